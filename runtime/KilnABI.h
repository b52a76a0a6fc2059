/*===- KilnABI.h - The C ABI between compiled models and the runtime -----===*
 *
 * `kilnc model.kiln -o model` compiles the model into an object file that
 * defines the symbols below, and links it with libkiln_runtime, which defines
 * `main`. A C or C++ program can also embed a compiled model directly
 * (`kilnc --emit=lib`), calling these functions itself.
 *
 * Entry points. A compiled model exports any number of entry points, each a
 * function `void kiln_NAME(void **buffers)` that takes one array of buffer
 * pointers. `kiln_entries()` returns them all, in the order of the manifest's
 * `entry` records, followed by a null pointer. A model with a loss has
 * `train_step` (kind train), `eval_step` (kind eval) and, if it has outputs,
 * `predict` (kind infer); a model may declare more (`sample`, `encode`, ...).
 *
 * Buffers. Every tensor is a dense, row-major array of its element type
 * (f32: float, f64: double, i32: int32_t) with the static shape the manifest
 * gives; the caller owns all memory. The buffers of one call must not
 * overlap: the generated code assumes that distinct buffers are distinct
 * memory (kiln-noalias-kernels). An entry's buffers are listed, in order, by
 * the `arg` records after its `entry` record; by kind:
 *
 *   train: params..., state..., inputs..., hyper, loss
 *   eval:  params..., inputs..., [hyper], loss, outputs...
 *   infer: params..., inputs..., [hyper], outputs...
 *
 * A train entry updates params and state in place and writes the loss of the
 * batch (computed before the update). `hyper` points to KILN_HYPER_COUNT
 * floats (see below). Eval and infer entries run the model in evaluation mode
 * (no dropout, batch normalization's running statistics); those of a model
 * that draws random numbers (a VAE's noise) take a hyper vector too, whose
 * step and seed key the numbers of each call (its learning rate is unused).
 *
 * Manifest. `kiln_manifest()` returns a NUL-terminated text, one record per
 * line, fields separated by single spaces, shapes written `64x784` (`scalar`
 * for rank 0). The record names, roles, kinds and tables live in
 * runtime/Contract.h.
 *
 *   kiln-manifest 2
 *   model NAME
 *   param NAME DTYPE SHAPE INIT [ARG...]
 *       INIT: zeros ones constant uniform normal glorot_uniform glorot_normal
 *       he_uniform he_normal (arguments as in the kiln.param op)
 *   state NAME DTYPE SHAPE           optimizer state, zero-initialized
 *   input NAME DTYPE SHAPE           an input some entry takes
 *   output NAME DTYPE SHAPE          an output some entry returns
 *   metric accuracy OUTPUT INPUT     accuracy = mean(OUTPUT == INPUT)
 *   labels INPUT CLASSES             INPUT holds class indices in
 *                                    [0, CLASSES); the runtime rejects data
 *                                    outside (the compiled step must not be
 *                                    given any)
 *   optimizer NAME KEY=VALUE...      every hyper-parameter of the optimizer
 *                                    the train entry applies, e.g. adam
 *                                    lr=0.001 beta1=0.9 ...
 *   train batch=B epochs=E seed=S
 *   data SPLIT INPUT FORMAT PATH [KEY=VALUE...]
 *       SPLIT: train | test; FORMAT: idx | npy | csv; PATH has no spaces
 *       (percent-encoded %20, %25)
 *   parallel data                    the train entry averages its gradients
 *                                    over a data-parallel job's processes
 *                                    (kiln_all_reduce_*, below)
 *   entry NAME KIND                  KIND: train | eval | infer
 *   arg ROLE [NAME]                  the entry's next buffer; ROLE: param,
 *                                    state, input, output (named after their
 *                                    records), hyper, loss (unnamed)
 *
 * Unknown record kinds are ignored by the runtime (forward compatibility).
 * Parameters that are buffers (batch normalization's running statistics) are
 * `param` records like the others: the train entry updates them in place.
 *
 * Reentrancy. The entries keep their temporaries in one static arena
 * (kiln-static-buffers): call them one at a time, never concurrently.
 *===----------------------------------------------------------------------===*/

#ifndef KILN_RUNTIME_KILNABI_H
#define KILN_RUNTIME_KILNABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Indices into the `hyper` buffer of an entry. */
enum {
  KILN_HYPER_LR = 0,   /* learning rate for this step */
  KILN_HYPER_STEP = 1, /* 1-based step number (Adam's bias correction) */
  KILN_HYPER_SEED = 2, /* the seed mod 2^24 (dropout's masks, random ops) */
  /* Which part of the global batch this process holds in a data-parallel
   * job (its rank; 0 alone): a random op over a tensor of E elements numbers
   * its elements from SHARD * E, so that with the batch as the tensor's
   * outermost dimension every example draws the numbers it would draw in one
   * process training on the whole global batch. */
  KILN_HYPER_SHARD = 3,
  KILN_HYPER_COUNT = 4 /* the buffer's length */
};

/* An entry point: takes the array of its buffers. */
typedef void (*kiln_entry_fn)(void **buffers);

const char *kiln_manifest(void);
/* The entry points in manifest order, then a null pointer. */
const kiln_entry_fn *kiln_entries(void);

/* The standard entry points, where the model has them (see above). */
void kiln_train_step(void **buffers);
void kiln_eval_step(void **buffers);
void kiln_predict(void **buffers);

/* Data parallelism. The train entry of a model compiled with `kilnc --mpi`
 * (manifest record `parallel data`) calls one of these once per step, after
 * the backward pass and before the optimizer update, on one buffer holding
 * the step's gradients, loss, loss terms and buffer updates: it must replace
 * the COUNT values at DATA with their mean over the processes of the job
 * (every process calling it with its own values). libkiln_runtime defines
 * them; a program embedding the model (`--emit=lib`) that trains alone can
 * leave the values as they are. */
void kiln_all_reduce_f32(float *data, int64_t count);
void kiln_all_reduce_f64(double *data, int64_t count);

#ifdef __cplusplus
}
#endif

#endif /* KILN_RUNTIME_KILNABI_H */
