/*===- KilnABI.h - The C ABI between compiled models and the runtime -----===*
 *
 * `kilnc model.kiln -o model` compiles the model into an object file that
 *defines the symbols below, and links it with libkiln_runtime, which defines
 *`main`. A C or C++ program can also embed a compiled model directly (`kilnc
 *--emit=lib`), calling these functions itself.
 *
 * Buffers. Every tensor is a dense, row-major array of its element type (f32:
 *float, i32: int32_t) with the static shape the manifest gives; the caller owns
 *all memory. The buffers of one call must not overlap: the generated code
 *assumes that distinct buffers are distinct memory (kiln-noalias-kernels). A
 *step function takes one array of buffer pointers, in this order:
 *
 *   kiln_train_step: params..., state..., inputs..., hyper, loss
 *   kiln_eval_step:  params..., inputs..., loss, outputs...
 *   kiln_predict:    params..., predict inputs..., outputs...
 *
 * where params, state, inputs and outputs are listed (in that order) by the
 * manifest's `param`, `state`, `input`/`predict-input` and `output` lines. The
 *train step updates params and state in place and writes the loss of the batch
 *(computed before the update). `hyper` points to KILN_HYPER_COUNT floats (see
 *below).
 *
 * Manifest. `kiln_manifest()` returns a NUL-terminated text, one record per
 *line, fields separated by single spaces, shapes written `64x784` (`scalar` for
 *rank 0):
 *
 *   kiln-manifest 1
 *   model NAME
 *   param NAME DTYPE SHAPE INIT [ARG...]     INIT: zeros ones constant uniform
 *                                            normal glorot_uniform
 *glorot_normal he_uniform he_normal (args as in the kiln.param op) state NAME
 *DTYPE SHAPE                   optimizer state, zero-initialized input NAME
 *DTYPE SHAPE predict-input NAME                       inputs kiln_predict
 *takes, in order output NAME DTYPE SHAPE                  named outputs (eval
 *and predict) metric accuracy OUTPUT INPUT             accuracy = mean(OUTPUT
 *== INPUT) labels INPUT CLASSES                     INPUT holds class indices
 *in [0, CLASSES); the runtime rejects data outside (the compiled step must not
 *be given any) optimizer NAME KEY=VALUE...              e.g. adam lr=0.001
 *beta1=0.9 ... train batch=B epochs=E seed=S entry NAME a step function the
 *object defines (train_step, eval_step, predict) data SPLIT INPUT FORMAT PATH
 *[KEY=VALUE...]   SPLIT: train | test; FORMAT: idx | npy | csv; PATH has no
 *spaces (percent-encoded %20, %25)
 *
 * Unknown record kinds are ignored by the runtime (forward compatibility).
 * Parameters that are buffers (batch normalization's running statistics) are
 * `param` records like the others: the step functions update them in place.
 *
 * Reentrancy. The step functions keep their temporaries in one static arena
 * (kiln-static-buffers): call them one at a time, never concurrently.
 *===----------------------------------------------------------------------===*/

#ifndef KILN_RUNTIME_KILNABI_H
#define KILN_RUNTIME_KILNABI_H

#ifdef __cplusplus
extern "C" {
#endif

/* Indices into the `hyper` buffer of kiln_train_step. */
enum {
  KILN_HYPER_LR = 0,   /* learning rate for this step */
  KILN_HYPER_STEP = 1, /* 1-based step number (Adam's bias correction) */
  KILN_HYPER_SEED = 2, /* the training seed mod 2^24 (dropout's masks) */
  KILN_HYPER_COUNT = 4 /* the buffer's length; the rest is reserved, zero */
};

const char *kiln_manifest(void);
void kiln_train_step(void **buffers);
void kiln_eval_step(void **buffers);
void kiln_predict(void **buffers);

#ifdef __cplusplus
}
#endif

#endif /* KILN_RUNTIME_KILNABI_H */
