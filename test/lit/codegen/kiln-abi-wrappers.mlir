// RUN: kiln-opt --kiln-abi-wrappers --split-input-file --verify-diagnostics %s | FileCheck %s

// One exported wrapper per row of the entry table (kiln.entries, in manifest
// order), the table itself as kiln_entries(), and the manifest.
// CHECK-LABEL: module {
// CHECK-NOT: kiln.manifest
// CHECK-NOT: kiln.entries
// CHECK: llvm.func internal @predict(%{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr)
// CHECK-NOT: kiln.input
// CHECK: llvm.func internal @helper()
// CHECK-NOT: @kiln_train_step
// CHECK: llvm.func @kiln_predict(%[[BUFS:.+]]: !llvm.ptr) {
// CHECK-NEXT: %[[P0:.+]] = llvm.getelementptr inbounds %[[BUFS]][0] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK-NEXT: %[[B0:.+]] = llvm.load %[[P0]] : !llvm.ptr -> !llvm.ptr
// CHECK-NEXT: %[[P1:.+]] = llvm.getelementptr inbounds %[[BUFS]][1] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK-NEXT: %[[B1:.+]] = llvm.load %[[P1]] : !llvm.ptr -> !llvm.ptr
// CHECK-NEXT: llvm.call @predict(%[[B0]], %[[B1]]) : (!llvm.ptr, !llvm.ptr) -> ()
// CHECK-NEXT: llvm.return
// CHECK: llvm.func @kiln_sample(%{{.+}}: !llvm.ptr) {
// CHECK: llvm.call @sample(
// CHECK: llvm.mlir.global internal constant @__kiln_entries() {{.*}} : !llvm.array<3 x ptr> {
// CHECK: %[[A0:.+]] = llvm.mlir.addressof @kiln_predict : !llvm.ptr
// CHECK: llvm.insertvalue %[[A0]], %{{.+}}[0]
// CHECK: %[[A1:.+]] = llvm.mlir.addressof @kiln_sample : !llvm.ptr
// CHECK: llvm.insertvalue %[[A1]], %{{.+}}[1]
// CHECK: %[[NULL:.+]] = llvm.mlir.zero : !llvm.ptr
// CHECK: llvm.insertvalue %[[NULL]], %{{.+}}[2]
// CHECK: llvm.func @kiln_entries() -> !llvm.ptr {
// CHECK-NEXT: %[[T:.+]] = llvm.mlir.addressof @__kiln_entries : !llvm.ptr
// CHECK-NEXT: llvm.return %[[T]] : !llvm.ptr
// CHECK: llvm.mlir.global internal constant @__kiln_manifest("kiln-manifest 2\0Aentry predict infer\0Aentry sample infer\0A\00")
// CHECK: llvm.func @kiln_manifest() -> !llvm.ptr {
// CHECK-NEXT: %[[M:.+]] = llvm.mlir.addressof @__kiln_manifest : !llvm.ptr
// CHECK-NEXT: llvm.return %[[M]] : !llvm.ptr
module attributes {kiln.manifest = "kiln-manifest 2\0Aentry predict infer\0Aentry sample infer\0A", kiln.entries = ["predict", "sample"], kiln.model = "m"} {
  llvm.func @predict(%x: !llvm.ptr {kiln.input = "x"}, %y: !llvm.ptr {kiln.output = "y"}) {
    llvm.call @helper() : () -> ()
    llvm.return
  }
  llvm.func @sample(%z: !llvm.ptr {kiln.input = "z"}) {
    llvm.return
  }
  llvm.func @helper() {
    llvm.return
  }
}

// -----

// expected-error @below {{no kiln.manifest attribute: run kiln-entry-abi first}}
module {
}

// -----

// expected-error @below {{no kiln.entries attribute: run kiln-entry-abi first}}
module attributes {kiln.manifest = ""} {
}

// -----

module attributes {kiln.manifest = "", kiln.entries = []} {
  // expected-error @below {{generated code calls @memrefCopy}}
  llvm.func @memrefCopy(i64, !llvm.ptr, !llvm.ptr)
}

// -----

module attributes {kiln.manifest = "", kiln.entries = ["eval_step"]} {
  // expected-error @below {{entry @eval_step must be defined and take only bare pointers}}
  llvm.func @eval_step(%x: !llvm.ptr, %n: i64) {
    llvm.return
  }
}

// -----

// expected-error @below {{entry @predict is missing}}
module attributes {kiln.manifest = "", kiln.entries = ["predict"]} {
}
