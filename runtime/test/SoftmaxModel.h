//===- SoftmaxModel.h - A hand-written model implementing the Kiln ABI ---===//
//
// Softmax regression (logits = x @ w + b, mean cross-entropy, Adam) written by
// hand exactly as kilnc compiles a model: a manifest and an entry table of
// three step functions taking buffer arrays in the order of KilnABI.h. Config
// supplies the sizes (batch B, features D, classes C), the model name and the
// data records.
//
//   train: w, b, w.adam_m, w.adam_v, b.adam_m, b.adam_v, image, label, hyper,
//          loss
//   eval:  w, b, image, label, loss, prediction
//   predict: w, b, image, prediction
//
// A label outside [0, C) makes the loss NaN and skips the update, the way a
// compiled step may reject it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TEST_SOFTMAXMODEL_H
#define KILN_RUNTIME_TEST_SOFTMAXMODEL_H

#include "runtime/KilnABI.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt::test {

template <typename Config> struct SoftmaxModel {
  static constexpr int B = Config::batch;
  static constexpr int D = Config::features;
  static constexpr int C = Config::classes;

  static const char *manifest() {
    static const std::string text =
        fmt::format("kiln-manifest 2\n"
                    "model {0}\n"
                    "param w f32 {2}x{3} glorot_uniform {2} {3}\n"
                    "param b f32 {3} zeros\n"
                    "state w.adam_m f32 {2}x{3}\n"
                    "state w.adam_v f32 {2}x{3}\n"
                    "state b.adam_m f32 {3}\n"
                    "state b.adam_v f32 {3}\n"
                    "input image f32 {1}x{2}\n"
                    "input label i32 {1}\n"
                    "output prediction i32 {1}\n"
                    "metric accuracy prediction label\n"
                    "labels label {3}\n"
                    "optimizer adam lr={4} beta1=0.9 beta2=0.999 eps=1e-08 "
                    "weight_decay=0 clip_norm=0\n"
                    "train batch={1} epochs={5} seed=42\n"
                    "{6}"
                    "entry train_step train\n"
                    "arg param w\narg param b\n"
                    "arg state w.adam_m\narg state w.adam_v\n"
                    "arg state b.adam_m\narg state b.adam_v\n"
                    "arg input image\narg input label\n"
                    "arg hyper\narg loss\n"
                    "entry eval_step eval\n"
                    "arg param w\narg param b\n"
                    "arg input image\narg input label\n"
                    "arg loss\narg output prediction\n"
                    "entry predict infer\n"
                    "arg param w\narg param b\n"
                    "arg input image\narg output prediction\n",
                    Config::name(), B, D, C, Config::lr(), Config::epochs(),
                    Config::dataRecords());
    return text.c_str();
  }

  /// logits = x @ w + b for one example.
  static void logits(const float *w, const float *b, const float *x,
                     double *out) {
    for (int c = 0; c < C; ++c)
      out[c] = b[c];
    for (int d = 0; d < D; ++d) {
      double xd = x[d];
      if (xd == 0)
        continue;
      const float *row = w + d * C;
      for (int c = 0; c < C; ++c)
        out[c] += xd * row[c];
    }
  }

  static int argmax(const double *z) {
    int best = 0;
    for (int c = 1; c < C; ++c)
      if (z[c] > z[best])
        best = c;
    return best;
  }

  /// Mean cross-entropy of the batch; fills the gradient of the mean loss
  /// w.r.t. the logits if GRAD is given. NaN for an invalid label.
  static double lossAndGrad(const float *w, const float *b, const float *x,
                            const int32_t *label, double *grad,
                            int32_t *prediction) {
    double total = 0;
    std::vector<double> z(C);
    for (int i = 0; i < B; ++i) {
      logits(w, b, x + size_t(i) * D, z.data());
      if (prediction)
        prediction[i] = argmax(z.data());
      double mx = z[0];
      for (int c = 1; c < C; ++c)
        mx = std::max(mx, z[c]);
      double sum = 0;
      for (int c = 0; c < C; ++c)
        sum += std::exp(z[c] - mx);
      double lse = mx + std::log(sum);
      if (label[i] < 0 || label[i] >= C)
        return NAN;
      total += lse - z[label[i]];
      if (grad)
        for (int c = 0; c < C; ++c)
          grad[i * C + c] =
              (std::exp(z[c] - lse) - (c == label[i] ? 1.0 : 0.0)) / B;
    }
    return total / B;
  }

  static void adam(float *p, float *m, float *v, const double *g, int n,
                   float lr, float step) {
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    double c1 = 1 - std::pow(beta1, step), c2 = 1 - std::pow(beta2, step);
    for (int i = 0; i < n; ++i) {
      m[i] = float(beta1 * m[i] + (1 - beta1) * g[i]);
      v[i] = float(beta2 * v[i] + (1 - beta2) * g[i] * g[i]);
      double mhat = m[i] / c1, vhat = v[i] / c2;
      p[i] = float(p[i] - lr * mhat / (std::sqrt(vhat) + eps));
    }
  }

  static void trainStep(void **buffers) {
    auto *w = static_cast<float *>(buffers[0]);
    auto *b = static_cast<float *>(buffers[1]);
    auto *wm = static_cast<float *>(buffers[2]);
    auto *wv = static_cast<float *>(buffers[3]);
    auto *bm = static_cast<float *>(buffers[4]);
    auto *bv = static_cast<float *>(buffers[5]);
    auto *x = static_cast<const float *>(buffers[6]);
    auto *label = static_cast<const int32_t *>(buffers[7]);
    auto *hyper = static_cast<const float *>(buffers[8]);
    auto *loss = static_cast<float *>(buffers[9]);
    std::vector<double> g(size_t(B) * C);
    double l = lossAndGrad(w, b, x, label, g.data(), nullptr);
    *loss = float(l);
    if (std::isnan(l))
      return;
    std::vector<double> gw(size_t(D) * C, 0.0), gb(C, 0.0);
    for (int i = 0; i < B; ++i) {
      const float *xi = x + size_t(i) * D;
      const double *gi = g.data() + size_t(i) * C;
      for (int c = 0; c < C; ++c)
        gb[c] += gi[c];
      for (int d = 0; d < D; ++d) {
        if (xi[d] == 0)
          continue;
        for (int c = 0; c < C; ++c)
          gw[size_t(d) * C + c] += xi[d] * gi[c];
      }
    }
    adam(w, wm, wv, gw.data(), D * C, hyper[KILN_HYPER_LR],
         hyper[KILN_HYPER_STEP]);
    adam(b, bm, bv, gb.data(), C, hyper[KILN_HYPER_LR], hyper[KILN_HYPER_STEP]);
  }

  static void evalStep(void **buffers) {
    auto *w = static_cast<const float *>(buffers[0]);
    auto *b = static_cast<const float *>(buffers[1]);
    auto *x = static_cast<const float *>(buffers[2]);
    auto *label = static_cast<const int32_t *>(buffers[3]);
    auto *loss = static_cast<float *>(buffers[4]);
    auto *prediction = static_cast<int32_t *>(buffers[5]);
    *loss = float(lossAndGrad(w, b, x, label, nullptr, prediction));
  }

  /// The entry table, in the manifest's order.
  static const kiln_entry_fn *entries() {
    static const kiln_entry_fn table[] = {trainStep, evalStep, predict,
                                          nullptr};
    return table;
  }

  static void predict(void **buffers) {
    auto *w = static_cast<const float *>(buffers[0]);
    auto *b = static_cast<const float *>(buffers[1]);
    auto *x = static_cast<const float *>(buffers[2]);
    auto *prediction = static_cast<int32_t *>(buffers[3]);
    std::vector<double> z(C);
    for (int i = 0; i < B; ++i) {
      logits(w, b, x + size_t(i) * D, z.data());
      prediction[i] = argmax(z.data());
    }
  }
};

} // namespace kiln::rt::test

#endif // KILN_RUNTIME_TEST_SOFTMAXMODEL_H
