//===- harness.cpp - Kiln's generated kernels against OpenBLAS and oneDNN -===//
//
// Times one f32 kernel three ways and prints one JSON object:
//
//   kbench matmul M N K [--min-time S] [--min-reps R]
//       C[M,N] = A[M,K] * B[K,N], row-major.
//   kbench conv N C H W O KH KW PAD [--min-time S] [--min-reps R]
//       y[N,O,OH,OW] = conv2d(x[N,C,H,W], w[O,C,KH,KW]), stride 1, zero
//       padding PAD on both sides, NCHW (torch's conv2d, no bias).
//
//   kiln      the kernel kilnc's lowering generates: an object defining
//             kiln_predict(void **buffers) with buffers {A, B, C} or
//             {x, w, y} (bench/kernels/*.mlir lowered by kiln-opt
//             --kiln-lower). Built with -DKBENCH_NO_KILN when Kiln could not
//             lower the kernel; it is then reported as missing.
//   openblas  cblas_sgemm (one thread); for conv, im2col per image + sgemm,
//             the im2col included in the time.
//   onednn    a oneDNN matmul / convolution primitive on one thread (layouts
//             chosen by oneDNN for conv; reorders outside the timing).
//
// Each is called once to warm up, then repeatedly until --min-time seconds
// (default 0.5) have passed (at least --min-reps calls, default 3; at most
// 1000); the report has the median and minimum time per call and GFLOP/s
// (2*M*N*K, or 2*N*O*OH*OW*C*KH*KW) from the median. `kiln_max_rel_err`
// compares Kiln's result with OpenBLAS's: max |kiln - blas| / max |blas|.
//
//===----------------------------------------------------------------------===//

#include <cblas.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#ifndef KBENCH_NO_KILN
extern "C" void kiln_predict(void **buffers);
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  bool ran = false;
  double medianMs = 0, minMs = 0;
  int reps = 0;
  std::string impl;
};

int minReps = 3;

Timing timeIt(const std::function<void()> &fn, double minTime) {
  fn(); // warm-up (page faults, oneDNN's JIT, caches)
  std::vector<double> ms;
  auto start = Clock::now();
  while (
      ms.size() < size_t(minReps) ||
      (std::chrono::duration<double>(Clock::now() - start).count() < minTime &&
       ms.size() < 1000)) {
    auto t0 = Clock::now();
    fn();
    ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  Timing t;
  t.ran = true;
  t.reps = int(ms.size());
  t.minMs = ms.front();
  size_t n = ms.size();
  t.medianMs = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  return t;
}

/// 64-byte aligned, zeroed floats (the runtime gives Kiln aligned buffers).
struct Floats {
  explicit Floats(size_t n) : n(n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    p = static_cast<float *>(std::aligned_alloc(64, bytes ? bytes : 64));
    std::memset(p, 0, bytes);
  }
  ~Floats() { std::free(p); }
  Floats(const Floats &) = delete;
  Floats &operator=(const Floats &) = delete;
  float *p;
  size_t n;
};

void fillRandom(Floats &f, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (size_t i = 0; i < f.n; ++i)
    f.p[i] = dist(rng);
}

double maxRelErr(const Floats &got, const Floats &want) {
  double maxDiff = 0, maxWant = 0;
  for (size_t i = 0; i < want.n; ++i) {
    maxDiff = std::max(maxDiff, double(std::fabs(got.p[i] - want.p[i])));
    maxWant = std::max(maxWant, double(std::fabs(want.p[i])));
  }
  return maxWant > 0 ? maxDiff / maxWant : maxDiff;
}

std::string jsonEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20)
      out += c;
  }
  return out;
}

void printTiming(const char *name, const Timing &t, double gflop, bool comma) {
  if (!t.ran) {
    std::printf("\"%s\":null%s", name, comma ? "," : "");
    return;
  }
  std::printf("\"%s\":{\"median_ms\":%.6g,\"min_ms\":%.6g,\"gflops\":%.6g,"
              "\"reps\":%d,\"impl\":\"%s\"}%s",
              name, t.medianMs, t.minMs, gflop / (t.medianMs * 1e-3), t.reps,
              jsonEscape(t.impl).c_str(), comma ? "," : "");
}

int usage() {
  std::fprintf(stderr,
               "usage: kbench matmul M N K [--min-time S] [--min-reps R]\n"
               "       kbench conv N C H W O KH KW PAD [--min-time S] "
               "[--min-reps R]\n");
  return 2;
}

int runMatmul(long M, long N, long K, double minTime) {
  Floats A(size_t(M * K)), B(size_t(K * N)), Cblas(size_t(M * N)),
      Ckiln(size_t(M * N)), Cdnnl(size_t(M * N));
  fillRandom(A, 1);
  fillRandom(B, 2);
  double gflop = 2.0 * double(M) * double(N) * double(K) * 1e-9;

  Timing blas = timeIt(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(N),
                    int(K), 1.0f, A.p, int(K), B.p, int(N), 0.0f, Cblas.p,
                    int(N));
      },
      minTime);
  blas.impl = "cblas_sgemm";

  Timing kiln;
  double err = -1;
#ifndef KBENCH_NO_KILN
  void *buffers[] = {A.p, B.p, Ckiln.p};
  kiln = timeIt([&] { kiln_predict(buffers); }, minTime);
  kiln.impl = "kiln.matmul";
  err = maxRelErr(Ckiln, Cblas);
#endif

  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  memory::desc a_md({M, K}, memory::data_type::f32, memory::format_tag::ab);
  memory::desc b_md({K, N}, memory::data_type::f32, memory::format_tag::ab);
  memory::desc c_md({M, N}, memory::data_type::f32, memory::format_tag::ab);
  matmul::primitive_desc pd(matmul::desc(a_md, b_md, c_md), eng);
  memory a_mem(a_md, eng, A.p), b_mem(b_md, eng, B.p),
      c_mem(c_md, eng, Cdnnl.p);
  matmul prim(pd);
  Timing dnnlT = timeIt(
      [&] {
        prim.execute(s, {{DNNL_ARG_SRC, a_mem},
                         {DNNL_ARG_WEIGHTS, b_mem},
                         {DNNL_ARG_DST, c_mem}});
        s.wait();
      },
      minTime);
  dnnlT.impl = pd.impl_info_str();
  double dnnlErr = maxRelErr(Cdnnl, Cblas);

  std::printf("{\"kind\":\"matmul\",\"shape\":[%ld,%ld,%ld],\"gflop\":%.6g,", M,
              N, K, gflop);
  printTiming("kiln", kiln, gflop, true);
  printTiming("openblas", blas, gflop, true);
  printTiming("onednn", dnnlT, gflop, true);
  std::printf("\"kiln_max_rel_err\":%.3g,\"onednn_max_rel_err\":%.3g}\n", err,
              dnnlErr);
  return 0;
}

/// col[(c*KH + i)*KW + j][oh*OW + ow] = x[c][oh + i - pad][ow + j - pad].
void im2col(const float *x, long C, long H, long W, long KH, long KW, long pad,
            long OH, long OW, float *col) {
  for (long c = 0; c < C; ++c)
    for (long i = 0; i < KH; ++i)
      for (long j = 0; j < KW; ++j) {
        float *row = col + ((c * KH + i) * KW + j) * OH * OW;
        for (long oh = 0; oh < OH; ++oh) {
          long h = oh + i - pad;
          float *out = row + oh * OW;
          if (h < 0 || h >= H) {
            std::memset(out, 0, size_t(OW) * sizeof(float));
            continue;
          }
          const float *in = x + (c * H + h) * W;
          for (long ow = 0; ow < OW; ++ow) {
            long w = ow + j - pad;
            out[ow] = (w >= 0 && w < W) ? in[w] : 0.0f;
          }
        }
      }
}

int runConv(long N, long C, long H, long W, long O, long KH, long KW, long pad,
            double minTime) {
  long OH = H + 2 * pad - KH + 1, OW = W + 2 * pad - KW + 1;
  if (OH <= 0 || OW <= 0)
    return usage();
  Floats x(size_t(N * C * H * W)), w(size_t(O * C * KH * KW)),
      yBlas(size_t(N * O * OH * OW)), yKiln(size_t(N * O * OH * OW)),
      yDnnl(size_t(N * O * OH * OW));
  fillRandom(x, 1);
  fillRandom(w, 2);
  double gflop = 2.0 * double(N) * double(O) * double(OH) * double(OW) *
                 double(C) * double(KH) * double(KW) * 1e-9;
  long K = C * KH * KW, P = OH * OW;

  Floats col(size_t(K * P));
  Timing blas = timeIt(
      [&] {
        for (long n = 0; n < N; ++n) {
          im2col(x.p + n * C * H * W, C, H, W, KH, KW, pad, OH, OW, col.p);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(O), int(P),
                      int(K), 1.0f, w.p, int(K), col.p, int(P), 0.0f,
                      yBlas.p + n * O * P, int(P));
        }
      },
      minTime);
  blas.impl = "im2col+cblas_sgemm";

  Timing kiln;
  double err = -1;
#ifndef KBENCH_NO_KILN
  void *buffers[] = {x.p, w.p, yKiln.p};
  kiln = timeIt([&] { kiln_predict(buffers); }, minTime);
  kiln.impl = "kiln.conv2d";
  err = maxRelErr(yKiln, yBlas);
#endif

  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  memory::dims xd = {N, C, H, W}, wd = {O, C, KH, KW}, yd = {N, O, OH, OW};
  auto f32 = memory::data_type::f32;
  memory::desc xAny(xd, f32, memory::format_tag::any),
      wAny(wd, f32, memory::format_tag::any),
      yAny(yd, f32, memory::format_tag::any);
  convolution_forward::desc desc(prop_kind::forward_inference,
                                 algorithm::convolution_direct, xAny, wAny,
                                 yAny, {1, 1}, {pad, pad}, {pad, pad});
  convolution_forward::primitive_desc pd(desc, eng);
  memory xUser({xd, f32, memory::format_tag::nchw}, eng, x.p);
  memory wUser({wd, f32, memory::format_tag::oihw}, eng, w.p);
  memory yUser({yd, f32, memory::format_tag::nchw}, eng, yDnnl.p);
  memory xMem = xUser, wMem = wUser, yMem = yUser;
  if (pd.src_desc() != xUser.get_desc()) {
    xMem = memory(pd.src_desc(), eng);
    reorder(xUser, xMem).execute(s, xUser, xMem);
  }
  if (pd.weights_desc() != wUser.get_desc()) {
    wMem = memory(pd.weights_desc(), eng);
    reorder(wUser, wMem).execute(s, wUser, wMem);
  }
  if (pd.dst_desc() != yUser.get_desc())
    yMem = memory(pd.dst_desc(), eng);
  s.wait();
  convolution_forward prim(pd);
  Timing dnnlT = timeIt(
      [&] {
        prim.execute(s, {{DNNL_ARG_SRC, xMem},
                         {DNNL_ARG_WEIGHTS, wMem},
                         {DNNL_ARG_DST, yMem}});
        s.wait();
      },
      minTime);
  dnnlT.impl = pd.impl_info_str();
  if (yMem != yUser)
    reorder(yMem, yUser).execute(s, yMem, yUser);
  s.wait();
  double dnnlErr = maxRelErr(yDnnl, yBlas);

  std::printf("{\"kind\":\"conv\",\"shape\":[%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld],"
              "\"gflop\":%.6g,",
              N, C, H, W, O, KH, KW, pad, gflop);
  printTiming("kiln", kiln, gflop, true);
  printTiming("openblas", blas, gflop, true);
  printTiming("onednn", dnnlT, gflop, true);
  std::printf("\"kiln_max_rel_err\":%.3g,\"onednn_max_rel_err\":%.3g}\n", err,
              dnnlErr);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  openblas_set_num_threads(1);
  double minTime = 0.5;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--min-time" && i + 1 < argc)
      minTime = std::atof(argv[++i]);
    else if (a == "--min-reps" && i + 1 < argc)
      minReps = std::max(1, std::atoi(argv[++i]));
    else
      args.push_back(a);
  }
  std::vector<long> n;
  for (size_t i = 1; i < args.size(); ++i)
    n.push_back(std::atol(args[i].c_str()));
  for (long v : n)
    if (v < 0)
      return usage();
  if (!args.empty() && args[0] == "matmul" && n.size() == 3)
    return runMatmul(n[0], n[1], n[2], minTime);
  if (!args.empty() && args[0] == "conv" && n.size() == 8)
    return runConv(n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], minTime);
  return usage();
}
