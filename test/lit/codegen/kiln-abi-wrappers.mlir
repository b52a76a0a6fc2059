// RUN: kiln-opt --kiln-abi-wrappers --split-input-file --verify-diagnostics %s | FileCheck %s

// CHECK-LABEL: module {
// CHECK-NOT: kiln.manifest
// CHECK: llvm.func internal @predict(%{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr)
// CHECK-NOT: kiln.input
// CHECK: llvm.func internal @helper()
// CHECK: llvm.func @kiln_train_step(%{{.+}}: !llvm.ptr) {
// CHECK-NEXT: llvm.return
// CHECK: llvm.func @kiln_eval_step(%{{.+}}: !llvm.ptr) {
// CHECK-NEXT: llvm.return
// CHECK: llvm.func @kiln_predict(%[[BUFS:.+]]: !llvm.ptr) {
// CHECK-NEXT: %[[P0:.+]] = llvm.getelementptr inbounds %[[BUFS]][0] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK-NEXT: %[[B0:.+]] = llvm.load %[[P0]] : !llvm.ptr -> !llvm.ptr
// CHECK-NEXT: %[[P1:.+]] = llvm.getelementptr inbounds %[[BUFS]][1] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK-NEXT: %[[B1:.+]] = llvm.load %[[P1]] : !llvm.ptr -> !llvm.ptr
// CHECK-NEXT: llvm.call @predict(%[[B0]], %[[B1]]) : (!llvm.ptr, !llvm.ptr) -> ()
// CHECK-NEXT: llvm.return
// CHECK: llvm.mlir.global internal constant @__kiln_manifest("kiln-manifest 1\0Aentry predict\0A\00")
// CHECK: llvm.func @kiln_manifest() -> !llvm.ptr {
// CHECK-NEXT: %[[M:.+]] = llvm.mlir.addressof @__kiln_manifest : !llvm.ptr
// CHECK-NEXT: llvm.return %[[M]] : !llvm.ptr
module attributes {kiln.manifest = "kiln-manifest 1\0Aentry predict\0A", kiln.model = "m"} {
  llvm.func @predict(%x: !llvm.ptr {kiln.input = "x"}, %y: !llvm.ptr {kiln.output = "y"}) {
    llvm.call @helper() : () -> ()
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

module attributes {kiln.manifest = ""} {
  // expected-error @below {{generated code calls @memrefCopy}}
  llvm.func @memrefCopy(i64, !llvm.ptr, !llvm.ptr)
}

// -----

module attributes {kiln.manifest = ""} {
  // expected-error @below {{entry @eval_step must be defined and take only bare pointers}}
  llvm.func @eval_step(%x: !llvm.ptr, %n: i64) {
    llvm.return
  }
}
