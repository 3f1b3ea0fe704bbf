// tests/test_cpu_fallback.cpp — every CPU row of the algorithm table (cpu_gemm, cpu_gemm_col2im,
// cpu_pool) through Plan::create / Plan::run against the fp64 reference (exact on integer inputs,
// bounded on random floats, outputs NaN-poisoned), over the paper, smoke, edge and random problem
// lists plus problems large enough to cross the GEMM's depth and pixel blocks; against oneDNN
// as an independent second oracle; the GEMM micro-kernel of every instruction set this CPU has;
// the thread pool; plans used from several threads at once (run this binary under
// ThreadSanitizer: CONVARITH_SANITIZE=thread).
#include <atomic>
#include <cmath>
#include <cstring>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include "cpu/cpu_ops.hpp"
#include "cpu/gemm.hpp"
#include "cpu/thread_pool.hpp"
#include "support/support.hpp"
#ifdef CONVARITH_HAVE_ONEDNN
#include "onednn/onednn_runner.hpp"
#endif

namespace convarith::test {
namespace {

std::vector<const Algorithm*> cpu_rows() {
  std::vector<const Algorithm*> rows;
  for (const Algorithm& a : algorithm_table())
    if (a.device == Device::kCpu)
      rows.push_back(&a);
  return rows;
}

ProblemDesc conv_desc(int64_t n, int64_t c, int64_t k, std::vector<int64_t> in, std::vector<int64_t> ker) {
  ProblemDesc d;
  d.n = n, d.c = c, d.k = k, d.rank = static_cast<int>(in.size());
  for (size_t j = 0; j < in.size(); ++j)
    d.input[j] = in[j], d.kernel[j] = ker[j];
  return d;
}

// Problems big enough to need several depth blocks (C*T*R*S > kGemmKc), several pixel blocks and
// edge tiles in both GEMM dimensions, for every op.
std::vector<NamedProblem> blocking_problems() {
  std::vector<NamedProblem> out;
  ProblemDesc d = conv_desc(2, 40, 19, {30, 31}, {3, 3});
  d.pad_lo = {1, 0}, d.pad_hi = {1, 2};
  out.push_back({"conv_depth360_asym", must_make(d)});
  d = conv_desc(1, 12, 10, {23, 29}, {3, 3});
  d.groups = 2, d.stride = {2, 3}, d.dilation = {2, 1}, d.pad_lo = {2, 1}, d.pad_hi = {0, 1};
  out.push_back({"conv_grouped_strided_dilated", must_make(d)});
  d = conv_desc(2, 300, 9, {33, 35}, {1, 1});
  out.push_back({"conv_1x1_direct_depth300", must_make(d)});
  d = conv_desc(1, 16, 16, {40, 41}, {3, 3});
  d.groups = 16, d.pad_lo = {1, 1}, d.pad_hi = {1, 1};
  out.push_back({"conv_depthwise", must_make(d)});
  d = conv_desc(1, 6, 5, {7, 9, 11}, {3, 2, 3});
  d.stride = {2, 1, 2}, d.pad_lo = {1, 0, 2}, d.pad_hi = {0, 1, 1}, d.dilation = {1, 2, 1};
  out.push_back({"conv_rank3", must_make(d)});
  d = conv_desc(2, 3, 7, {301}, {5});
  d.stride = {3}, d.pad_lo = {2}, d.pad_hi = {4};
  out.push_back({"conv_rank1_long", must_make(d)});
  d = conv_desc(2, 300, 10, {10, 9}, {4, 4});
  d.op = Op::kConvTranspose, d.stride = {2, 2}, d.pad_lo = {1, 2}, d.pad_hi = {1, 0}, d.output_padding = {1, 0};
  out.push_back({"conv_transpose_depth300_outpad", must_make(d)});
  d = conv_desc(2, 8, 12, {9, 7}, {3, 3});
  d.op = Op::kConvTranspose, d.groups = 4, d.stride = {3, 2}, d.dilation = {2, 3}, d.pad_lo = {4, 0}, d.pad_hi = {1, 3},
  d.output_padding = {2, 1};
  out.push_back({"conv_transpose_grouped_dilated_cropped", must_make(d)});
  d = conv_desc(1, 4, 6, {5, 6, 4}, {2, 3, 3});
  d.op = Op::kConvTranspose, d.stride = {2, 1, 3}, d.pad_lo = {0, 1, 1}, d.pad_hi = {1, 1, 0},
  d.output_padding = {1, 0, 2};
  out.push_back({"conv_transpose_rank3", must_make(d)});
  // The same with 36 taps: one image whose columns are at least any ISA's tile width (AVX-512's 32; the 18 taps
  // above reach AVX2's 16 only), so cpu_gemm_col2im streams its weights as B on every CPU.
  d.kernel = {3, 3, 4};
  out.push_back({"conv_transpose_rank3_weights_as_b", must_make(d)});
  // Inputs whose columns exceed cpu_gemm_col2im's budget go through in pixel blocks that end
  // mid-row; every output element must still get every term.
  d = conv_desc(1, 3, 2, {19, 20, 21}, {2, 2, 3});
  d.op = Op::kConvTranspose, d.stride = {2, 1, 2}, d.pad_lo = {1, 0, 2}, d.pad_hi = {0, 1, 1},
  d.output_padding = {1, 0, 1};
  out.push_back({"conv_transpose_rank3_pixel_blocks", must_make(d)});
  // One image with few input pixels streams the weights as the GEMM's B: 2 groups of 300 input channels (two
  // depth blocks, the second short), 40 output channels per group in 4 chunks of 10 (160 columns each: one
  // full 128-column copy of W and a short one).
  d = conv_desc(1, 600, 80, {5, 4}, {4, 4});
  d.op = Op::kConvTranspose, d.groups = 2, d.stride = {2, 3}, d.pad_lo = {1, 0}, d.pad_hi = {1, 2},
  d.output_padding = {1, 0};
  out.push_back({"conv_transpose_weights_as_b", must_make(d)});
  d = conv_desc(2, 4, 3, {150, 97}, {3, 3});
  d.op = Op::kConvTranspose, d.groups = 1, d.stride = {2, 3}, d.dilation = {1, 2}, d.pad_lo = {1, 2}, d.pad_hi = {2, 0};
  out.push_back({"conv_transpose_pixel_blocks", must_make(d)});
  // One output channel per group takes cpu_gemm's direct path; rows wider than its 256-column
  // chunk (here and for pooling below) cross a chunk boundary.
  d = conv_desc(2, 6, 3, {5, 601}, {2, 3});
  d.groups = 3, d.stride = {1, 2}, d.dilation = {2, 2}, d.pad_lo = {1, 3}, d.pad_hi = {0, 1};
  out.push_back({"conv_one_output_channel_per_group_wide", must_make(d)});
  d = conv_desc(1, 3, 3, {3, 5, 300}, {2, 2, 3});
  d.groups = 3, d.pad_lo = {0, 1, 1}, d.pad_hi = {1, 0, 1};
  out.push_back({"conv_depthwise_rank3_wide", must_make(d)});
  // Depthwise at stride 2 along W on the zero-padded plane: each padded row is split into its even and odd columns
  // straight from x, 16 columns at a time where both lie inside the row, one by one at the borders and the tail.
  d = conv_desc(2, 3, 3, {30, 37}, {3, 3});
  d.groups = 3, d.stride = {2, 2}, d.pad_lo = {1, 1}, d.pad_hi = {1, 1};
  out.push_back({"conv_depthwise_stride2_odd_width", must_make(d)});
  d = conv_desc(1, 2, 2, {17, 44}, {5, 5});
  d.groups = 2, d.stride = {2, 2}, d.dilation = {1, 2}, d.pad_lo = {2, 0}, d.pad_hi = {1, 3};
  out.push_back({"conv_depthwise_stride2_dilated_asymmetric", must_make(d)});
  d = conv_desc(1, 2, 4, {9, 41}, {3, 3});
  d.groups = 2, d.stride = {1, 2}, d.pad_lo = {0, 3}, d.pad_hi = {1, 2};
  out.push_back({"conv_depthwise_multiplier2_stride_1x2_wide_pad", must_make(d)});
  // Grouped with few output channels per group (grouped_direct: every output plane on the padded planes of its
  // group's input channels): ResNeXt-like 4 in / 4 out per group, and 3 in / 2 out at stride 2 with dilation.
  d = conv_desc(2, 16, 16, {11, 21}, {3, 3});
  d.groups = 4, d.pad_lo = {1, 1}, d.pad_hi = {1, 1};
  out.push_back({"conv_grouped_4x4_per_group", must_make(d)});
  d = conv_desc(1, 9, 6, {13, 40}, {3, 3});
  d.groups = 3, d.stride = {2, 2}, d.dilation = {2, 1}, d.pad_lo = {2, 0}, d.pad_hi = {1, 2};
  out.push_back({"conv_grouped_3x2_stride2_dilated", must_make(d)});
  for (Op op : {Op::kMaxPool, Op::kAvgPool}) {
    d = conv_desc(1, 2, 2, {4, 530}, {2, 3});
    d.op = op, d.pad_lo = {1, 1}, d.pad_hi = {0, 1}, d.count_include_pad = op == Op::kAvgPool;
    out.push_back({std::string(op_name(op)) + "_wide", must_make(d)});
  }
  for (Op op : {Op::kMaxPool, Op::kAvgPool}) {
    for (bool include : {false, true}) {
      d = conv_desc(2, 5, 5, {33, 30}, {3, 4});
      d.op = op, d.stride = {2, 3}, d.pad_lo = {1, 2}, d.pad_hi = {1, 0}, d.ceil_mode = true, d.dilation = {1, 2};
      d.count_include_pad = include && op == Op::kAvgPool;
      out.push_back({std::string(op_name(op)) + (include ? "_ceil_include_pad" : "_ceil"), must_make(d)});
    }
  }
  return out;
}

struct Outcome {
  std::vector<float> y;
  Status status;
};

// Runs `row` on the problem through the public API, with the workspace at an odd address (the
// algorithm must align it itself) and y poisoned with NaN.
Outcome run_plan(const ConvProblem& p, const Algorithm& row, const Inputs& in) {
  Outcome out;
  Result<Plan> plan = Plan::create(p, Device::kCpu, row.name);
  if (!plan) {
    out.status = plan.status();
    return out;
  }
  std::vector<unsigned char> workspace(plan->workspace_bytes() + 1);
  out.y.resize(static_cast<size_t>(p.y_elements()));
  poison(out.y);
  out.status = plan->run(in.x.data(), in.w.empty() ? nullptr : in.w.data(), in.bias.empty() ? nullptr : in.bias.data(),
                         out.y.data(), workspace.data() + 1, plan->workspace_bytes());
  return out;
}

// Every CPU row that runs the problem's op: exact on integers, bounded on random floats.
void check_against_reference(const std::vector<NamedProblem>& problems) {
  int checked = 0;
  for (const Algorithm* row : cpu_rows()) {
    for (const NamedProblem& np : problems) {
      const ConvProblem& p = np.problem;
      if (!(row->ops & op_bit(p.op())))
        continue;
      const uint64_t seed = fresh_seed();
      SCOPED_TRACE(std::string(row->name) + " on " + np.name + " (" + p.name() + "), seed " + std::to_string(seed));
      // cpu_gemm, cpu_gemm_col2im and cpu_pool take every problem of their op; cpu_winograd only 2-D 3x3 stride 1
      // (its own tests: test_cpu_winograd.cpp).
      if ((std::string(row->name) == "cpu_winograd" || std::string(row->name) == "cpu_amx_bf16") &&
          !row->supports(p).is_ok())
        continue;
      ASSERT_TRUE(row->supports(p).is_ok()) << row->supports(p).message();
      for (bool with_bias : {true, false}) {
        if (is_pool(p.op()) && with_bias)
          continue;
        const Inputs ints = integer_inputs(p, seed, with_bias);
        Outcome got = run_plan(p, *row, ints);
        ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
        const std::vector<double> want = reference(p, ints.x.data(), ints.w.empty() ? nullptr : ints.w.data(),
                                                   with_bias ? ints.bias.data() : nullptr);
        if (p.n() > 0 && p.op() != Op::kAvgPool) {
          EXPECT_TRUE(exact_match(p, got.y, want));
        } else {
          // An average of integers is a division: compare with the float bound instead.
          const std::vector<double> mag = reference_magnitude(p, ints.x.data(), nullptr, nullptr);
          EXPECT_TRUE(close_match(p, got.y, want, mag));
        }
      }
      const Inputs rnd = random_inputs(p, seed + 1);
      Outcome got = run_plan(p, *row, rnd);
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      const float* w = rnd.w.empty() ? nullptr : rnd.w.data();
      const float* b = rnd.bias.empty() ? nullptr : rnd.bias.data();
      EXPECT_TRUE(close_match(p, got.y, reference(p, rnd.x.data(), w, b), reference_magnitude(p, rnd.x.data(), w, b)));
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(CpuFallback, TableHasTheCpuRows) {
  std::vector<std::string> names;
  for (const Algorithm* row : cpu_rows()) {
    names.push_back(row->name);
    EXPECT_EQ(row->device, Device::kCpu) << row->name;
    EXPECT_NE(row->run, nullptr) << row->name;
    EXPECT_TRUE(row->deterministic) << row->name;
  }
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names[0], "cpu_gemm");
  EXPECT_EQ(names[1], "cpu_gemm_col2im");
  EXPECT_EQ(names[2], "cpu_pool");
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool}) {
    ProblemDesc d = conv_desc(1, 2, 2, {5, 5}, {2, 2});
    d.op = op;
    Result<Plan> plan = Plan::create(must_make(d), Device::kCpu);
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    EXPECT_STREQ(plan->algorithm(), op == Op::kConv            ? "cpu_gemm"
                                    : op == Op::kConvTranspose ? "cpu_gemm_col2im"
                                                               : "cpu_pool");
  }
}

TEST(CpuFallback, PaperProblems) {
  check_against_reference(paper_problems());
}
TEST(CpuFallback, SmokeProblems) {
  check_against_reference(smoke_problems());
}
TEST(CpuFallback, EdgeProblems) {
  check_against_reference(edge_problems());
}
TEST(CpuFallback, RandomProblems) {
  check_against_reference(random_problems(20261124, 150));
}
TEST(CpuFallback, FreshRandomProblems) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("random_problems seed " + std::to_string(seed));
  check_against_reference(random_problems(seed, 40));
}
TEST(CpuFallback, BlockingProblems) {
  check_against_reference(blocking_problems());
}

TEST(CpuFallback, DeterministicRunToRun) {
  for (const NamedProblem& np : blocking_problems()) {
    const ConvProblem& p = np.problem;
    Result<Plan> plan = Plan::create(p, Device::kCpu);
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    const Inputs in = random_inputs(p, fresh_seed());
    const Algorithm* row = find_algorithm(plan->algorithm(), Device::kCpu);
    ASSERT_NE(row, nullptr);
    Outcome a = run_plan(p, *row, in), b = run_plan(p, *row, in);
    ASSERT_TRUE(a.status.is_ok() && b.status.is_ok());
    EXPECT_EQ(0, std::memcmp(a.y.data(), b.y.data(), a.y.size() * sizeof(float))) << np.name;
  }
}

// cpu_gemm_col2im's two GEMM orientations (one image: weights streamed as B; two: W^T packed as A) compute the
// same products in the same order, so image 0 of a two-image run is bitwise the one-image run.
TEST(CpuFallback, TransposedOrientationsAgreeBitwise) {
  int compared = 0;
  for (const NamedProblem& np : blocking_problems()) {
    const ConvProblem& one = np.problem;
    // These two take the weights-as-B orientation whatever the CPU's tile (the rule is tested, not assumed).
    if (np.name == "conv_transpose_weights_as_b" || np.name == "conv_transpose_rank3_weights_as_b") {
      EXPECT_TRUE(detail::cpu_conv_transpose_weights_as_b(one)) << np.name;
    }
    if (one.op() != Op::kConvTranspose || one.n() != 1 || !detail::cpu_conv_transpose_weights_as_b(one))
      continue;
    ProblemDesc d = one.resolved();
    d.n = 2;
    const ConvProblem two = must_make(d);
    ASSERT_FALSE(detail::cpu_conv_transpose_weights_as_b(two)) << np.name;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(np.name + ", seed " + std::to_string(seed));
    const Inputs in2 = random_inputs(two, seed);
    Inputs in1 = in2;
    in1.x.resize(static_cast<size_t>(one.x_elements()));
    const Algorithm* row = find_algorithm("cpu_gemm_col2im", Device::kCpu);
    ASSERT_NE(row, nullptr);
    Outcome a = run_plan(one, *row, in1), b = run_plan(two, *row, in2);
    ASSERT_TRUE(a.status.is_ok()) << a.status.to_string();
    ASSERT_TRUE(b.status.is_ok()) << b.status.to_string();
    ASSERT_EQ(a.y.size() * 2, b.y.size());
    EXPECT_EQ(0, std::memcmp(a.y.data(), b.y.data(), a.y.size() * sizeof(float)));
    ++compared;
  }
  EXPECT_GE(compared, 2); // the two above (and conv_transpose_rank3 where the tile is 16 wide)
}

TEST(CpuFallback, EmptyBatchIsANoOp) {
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool}) {
    ProblemDesc d = conv_desc(0, 3, 4, {5, 5}, {3, 3});
    d.op = op;
    const ConvProblem p = must_make(d);
    for (const Algorithm* row : cpu_rows()) {
      if (!(row->ops & op_bit(op)) || !(row->dtypes & dtype_bit(DataType::kF32))) // cpu_amx_bf16: bf16 only
        continue;
      Result<Plan> plan = Plan::create(p, Device::kCpu, row->name);
      ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
      // every pointer null: nothing may be touched
      EXPECT_TRUE(plan->run(nullptr, nullptr, nullptr, nullptr).is_ok()) << row->name << " " << op_name(op);
    }
  }
}

// workspace() runs for every valid problem at Plan::create, N = 0 included, where products of
// sizes can pass 2^63: it must saturate (UBSan flags signed overflow) and the run stays a no-op.
TEST(CpuFallback, HugeEmptyProblemsPlanAndRun) {
  int planned = 0;
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool}) {
    for (int64_t groups : {int64_t{1}, int64_t{2}}) {
      ProblemDesc d = conv_desc(0, 2, 2, {1 << 20, 1 << 20, 1 << 20}, {1 << 10, 1 << 10, 1 << 10});
      d.op = op, d.groups = is_pool(op) ? 1 : groups;
      if (op == Op::kConv || is_pool(op))
        d.pad_lo = d.pad_hi = {1 << 9, 1 << 9, 1 << 9};
      Result<ConvProblem> p = ConvProblem::make(d);
      if (!p)
        continue; // the factory may refuse sizes this large; then there is nothing to plan
      Result<Plan> plan = Plan::create(*p, Device::kCpu);
      ASSERT_TRUE(plan.is_ok()) << p->name() << ": " << plan.status().to_string();
      EXPECT_TRUE(plan->run(nullptr, nullptr, nullptr, nullptr).is_ok()) << p->name();
      ++planned;
    }
  }
  std::cout << "planned " << planned << " huge empty problems\n";
}

TEST(CpuFallback, WrongOpIsNotSupported) {
  ProblemDesc d = conv_desc(1, 2, 2, {5, 5}, {3, 3}); // 3x3 stride 1: cpu_winograd takes it too
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool}) {
    d.op = op;
    const ConvProblem p = must_make(d);
    for (const Algorithm* row : cpu_rows()) {
      if (!(row->dtypes & dtype_bit(DataType::kF32))) // cpu_amx_bf16: bf16 only (test_cpu_amx.cpp)
        continue;
      const Status s = row->supports(p);
      if (row->ops & op_bit(op)) {
        EXPECT_TRUE(s.is_ok()) << row->name << ": " << s.message();
      } else {
        EXPECT_EQ(s.code(), StatusCode::kNotSupported) << row->name << " " << op_name(op);
        EXPECT_NE(s.message().find(op_name(op)), std::string::npos) << s.message();
      }
    }
  }
}

// The checks live in Plan::run, once: a short workspace is an error that names both sizes, a null w too,
// and y stays untouched.
TEST(CpuFallback, ShortWorkspaceIsAnErrorAndWritesNothing) {
  const ConvProblem p = blocking_problems()[0].problem;
  Result<Plan> plan = Plan::create(p, Device::kCpu, "cpu_gemm");
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const size_t need = plan->workspace_bytes();
  ASSERT_GT(need, 0u);
  const Inputs in = integer_inputs(p, 7);
  std::vector<unsigned char> workspace(need);
  std::vector<float> y(static_cast<size_t>(p.y_elements()), 12345.0f);
  const Status s = plan->run(in.x.data(), in.w.data(), in.bias.data(), y.data(), workspace.data(), need - 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(std::to_string(need)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(std::to_string(need - 1)), std::string::npos) << s.message();
  for (float v : y)
    ASSERT_EQ(v, 12345.0f);
  EXPECT_EQ(plan->run(in.x.data(), nullptr, in.bias.data(), y.data(), workspace.data(), need).code(),
            StatusCode::kInvalidArgument);
  for (float v : y)
    ASSERT_EQ(v, 12345.0f);
}

// Several threads run plans at once (their own buffers, one plan shared by all): every result is
// exact, and under ThreadSanitizer the pool's hand-offs are race-free.
TEST(CpuFallback, PlansFromSeveralThreadsAtOnce) {
  const std::vector<NamedProblem> problems = blocking_problems();
  std::vector<Result<Plan>> plans;
  std::vector<Inputs> inputs;
  std::vector<std::vector<double>> wants;
  for (const NamedProblem& np : problems) {
    plans.push_back(Plan::create(np.problem, Device::kCpu));
    ASSERT_TRUE(plans.back().is_ok()) << plans.back().status().to_string();
    inputs.push_back(integer_inputs(np.problem, 99));
    const Inputs& in = inputs.back();
    wants.push_back(reference(np.problem, in.x.data(), in.w.empty() ? nullptr : in.w.data(),
                              in.bias.empty() ? nullptr : in.bias.data()));
  }
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) {
        for (size_t i = 0; i < problems.size(); ++i) {
          const size_t pi = (i + static_cast<size_t>(t)) % problems.size();
          const Plan& plan = plans[pi].value();
          const Inputs& in = inputs[pi];
          std::vector<unsigned char> workspace(plan.workspace_bytes());
          std::vector<float> y(static_cast<size_t>(plan.problem().y_elements()), std::nanf(""));
          const Status s =
              plan.run(in.x.data(), in.w.empty() ? nullptr : in.w.data(), in.bias.empty() ? nullptr : in.bias.data(),
                       y.data(), workspace.data(), workspace.size());
          bool ok = s.is_ok();
          for (size_t e = 0; ok && e < y.size(); ++e) {
            const bool avg = plan.problem().op() == Op::kAvgPool;
            ok = avg ? std::fabs(y[e] - wants[pi][e]) <= 1e-5 * (1 + std::fabs(wants[pi][e])) : y[e] == wants[pi][e];
          }
          if (!ok)
            failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& th : threads)
    th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(CpuThreadPool, EveryTaskOnceSlotsInRangeConcurrentCallers) {
  detail::ThreadPool& pool = detail::ThreadPool::instance();
  const int slots = pool.max_slots();
  ASSERT_GE(slots, 1);
  std::atomic<int> bad_slots{0};
  std::vector<std::thread> callers;
  std::vector<std::vector<std::atomic<int>>> hits(3);
  for (auto& h : hits)
    h = std::vector<std::atomic<int>>(1000);
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&, c] {
      for (int rep = 0; rep < 5; ++rep) {
        auto fn = [&](int64_t task, int slot) {
          if (slot < 0 || slot >= slots)
            bad_slots.fetch_add(1);
          hits[static_cast<size_t>(c)][static_cast<size_t>(task)].fetch_add(1);
        };
        pool.parallel_for(1000, fn);
      }
    });
  }
  for (std::thread& th : callers)
    th.join();
  EXPECT_EQ(bad_slots.load(), 0);
  for (auto& h : hits)
    for (auto& v : h)
      ASSERT_EQ(v.load(), 5);
}

// Each micro-kernel this CPU can run (not only the one chosen) against a plain loop: edge tiles in
// both dimensions, two depth blocks, bias on the first block and accumulation on the second.
TEST(CpuGemm, EveryAvailableKernelMatchesAPlainLoop) {
  // Depth blocks of 256 + 44, 256 + 3, 32, 10 and 2: the x86 tiles step the depth four at a time, then one at a
  // time; blocks of up to 32 go through panel by panel, longer ones sliver by sliver.
  for (const int64_t depth : {300, 259, 32, 10, 2}) {
    SCOPED_TRACE("depth " + std::to_string(depth));
    const int64_t m = 13, n = 37, ldb = 41, ldc = 39;
    std::mt19937 gen(5);
    std::uniform_int_distribution<int> dist(-3, 3);
    std::vector<float> a(static_cast<size_t>(m * depth)), b(static_cast<size_t>(depth * ldb)), bias(m);
    for (float& v : a)
      v = static_cast<float>(dist(gen));
    for (float& v : b)
      v = static_cast<float>(dist(gen));
    for (float& v : bias)
      v = static_cast<float>(dist(gen));
    std::vector<double> want(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = bias[static_cast<size_t>(i)];
        for (int64_t q = 0; q < depth; ++q)
          acc += double(a[static_cast<size_t>(i * depth + q)]) * b[static_cast<size_t>(q * ldb + j)];
        want[static_cast<size_t>(i * n + j)] = acc;
      }
    const std::vector<const detail::GemmKernel*> kernels = detail::available_gemm_kernels();
    ASSERT_FALSE(kernels.empty());
    EXPECT_EQ(kernels.front(), &detail::gemm_kernel());
    for (const detail::GemmKernel* g : kernels) {
      SCOPED_TRACE(g->isa);
      ASSERT_LE(g->mr, detail::kMaxMr);
      ASSERT_LE(g->nr, detail::kMaxNr);
      std::vector<float> packed(static_cast<size_t>(detail::packed_a_floats(*g, m, depth)), std::nanf(""));
      for (int64_t i0 = 0; i0 < m; i0 += g->mr)
        for (int64_t q = 0; q < depth; ++q)
          for (int i = 0; i < g->mr; ++i)
            packed[static_cast<size_t>(i0 * depth + q * g->mr + i)] =
                i0 + i < m ? a[static_cast<size_t>((i0 + i) * depth + q)] : 0.0f;
      std::vector<float> c(static_cast<size_t>(m * ldc), std::nanf(""));
      for (int64_t k0 = 0; k0 < depth; k0 += detail::kGemmKc) {
        const int64_t kc = std::min(detail::kGemmKc, depth - k0);
        detail::gemm_block(*g, m, n, kc, packed.data() + k0 * g->mr, depth * g->mr, b.data() + k0 * ldb, ldb, n,
                           c.data(), ldc, k0 > 0, bias.data());
      }
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j)
          ASSERT_EQ(c[static_cast<size_t>(i * ldc + j)], want[static_cast<size_t>(i * n + j)]) << i << "," << j;
        for (int64_t j = n; j < ldc; ++j)
          ASSERT_TRUE(std::isnan(c[static_cast<size_t>(i * ldc + j)])) << "wrote past n";
      }
      // The row-major tile on A in place (13 rows: the last panel is packed zero-padded by gemm_block_rows).
      std::vector<float> c_rows(static_cast<size_t>(m * ldc), std::nanf(""));
      for (int64_t k0 = 0; k0 < depth; k0 += detail::kGemmKc) {
        const int64_t kc = std::min(detail::kGemmKc, depth - k0);
        detail::gemm_block_rows(*g, m, n, kc, a.data() + k0, depth, b.data() + k0 * ldb, ldb, n, c_rows.data(), ldc,
                                k0 > 0, bias.data());
      }
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j)
          ASSERT_EQ(c_rows[static_cast<size_t>(i * ldc + j)], want[static_cast<size_t>(i * n + j)])
              << "rows " << i << "," << j;
        for (int64_t j = n; j < ldc; ++j)
          ASSERT_TRUE(std::isnan(c_rows[static_cast<size_t>(i * ldc + j)])) << "rows: wrote past n";
      }
    }
  }
}

#ifdef CONVARITH_HAVE_ONEDNN
// oneDNN as an independent oracle: ours and oneDNN's agree within the float bound of sum |x*w|.
void check_against_onednn(const NamedProblem& np, bool must_be_supported, int* compared,
                          onednn::RunnerOptions options = {}) {
  const ConvProblem& p = np.problem;
  Result<onednn::Runner> runner = onednn::Runner::create(p, options);
  if (!runner) {
    EXPECT_FALSE(must_be_supported) << np.name << ": " << runner.status().to_string();
    EXPECT_EQ(runner.status().code(), StatusCode::kNotSupported) << runner.status().to_string();
    return;
  }
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(np.name + " (" + p.name() + ") vs oneDNN [" + runner->implementation() + "], seed " +
               std::to_string(seed));
  Result<Plan> plan = Plan::create(p, Device::kCpu);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const Algorithm* row = find_algorithm(plan->algorithm(), Device::kCpu);
  ASSERT_NE(row, nullptr);
  const Inputs in = random_inputs(p, seed);
  const float* w = in.w.empty() ? nullptr : in.w.data();
  const float* b = in.bias.empty() ? nullptr : in.bias.data();
  Outcome ours = run_plan(p, *row, in);
  ASSERT_TRUE(ours.status.is_ok()) << ours.status.to_string();
  std::vector<float> theirs(static_cast<size_t>(p.y_elements()));
  poison(theirs);
  ASSERT_TRUE(runner->run(in.x.data(), w, b, theirs.data()).is_ok());
  const std::vector<double> oracle(theirs.begin(), theirs.end());
  // Both sides carry float error: twice the single-result bound.
  EXPECT_TRUE(close_match(p, ours.y, oracle, reference_magnitude(p, in.x.data(), w, b), 4.0));
  ++*compared;
}

std::vector<NamedProblem> onednn_problems() {
  std::vector<NamedProblem> out;
  ProblemDesc d = conv_desc(2, 6, 8, {13, 11}, {3, 3});
  d.dilation = {2, 3}, d.pad_lo = {2, 0}, d.pad_hi = {1, 3};
  out.push_back({"conv_dilated_asymmetric", must_make(d)});
  d = conv_desc(2, 12, 8, {9, 10}, {3, 2});
  d.groups = 4, d.stride = {2, 1}, d.pad_lo = {0, 1}, d.pad_hi = {1, 0};
  out.push_back({"conv_groups", must_make(d)});
  d = conv_desc(1, 8, 8, {12, 12}, {3, 3});
  d.groups = 8, d.pad_lo = {1, 1}, d.pad_hi = {1, 1}, d.stride = {2, 2};
  out.push_back({"conv_depthwise", must_make(d)});
  d = conv_desc(1, 3, 4, {6, 7, 5}, {3, 2, 2});
  d.pad_lo = {1, 0, 1}, d.pad_hi = {0, 1, 1}, d.dilation = {1, 2, 1};
  out.push_back({"conv_rank3", must_make(d)});
  d = conv_desc(3, 4, 5, {29}, {4});
  d.stride = {3}, d.pad_lo = {2}, d.pad_hi = {0};
  out.push_back({"conv_rank1", must_make(d)});
  d = conv_desc(2, 6, 4, {5, 6}, {4, 3});
  d.op = Op::kConvTranspose, d.stride = {2, 3}, d.pad_lo = {1, 0}, d.pad_hi = {2, 1}, d.output_padding = {1, 1};
  out.push_back({"conv_transpose_output_padding", must_make(d)});
  d = conv_desc(2, 6, 9, {4, 5}, {3, 3});
  d.op = Op::kConvTranspose, d.groups = 3, d.stride = {2, 2}, d.dilation = {2, 1}, d.pad_lo = {2, 1}, d.pad_hi = {3, 2},
  d.output_padding = {1, 1};
  out.push_back({"conv_transpose_groups_dilated", must_make(d)});
  for (Op op : {Op::kMaxPool, Op::kAvgPool}) {
    d = conv_desc(2, 3, 3, {11, 10}, {3, 3});
    d.op = op, d.stride = {2, 2}, d.pad_lo = {1, 1}, d.pad_hi = {1, 1}, d.ceil_mode = true;
    out.push_back({std::string(op_name(op)) + "_ceil", must_make(d)});
    d.dilation = {2, 1}, d.ceil_mode = false, d.count_include_pad = op == Op::kAvgPool;
    out.push_back({std::string(op_name(op)) + "_dilated", must_make(d)});
  }
  return out;
}

TEST(CpuFallbackVsOneDnn, ChosenProblems) {
  int compared = 0;
  for (const NamedProblem& np : onednn_problems())
    check_against_onednn(np, true, &compared);
  EXPECT_EQ(compared, static_cast<int>(onednn_problems().size()));
}

// The bench's configuration: oneDNN's own layouts with reorders inside run().
TEST(CpuFallbackVsOneDnn, ChosenProblemsBlockedLayouts) {
  int compared = 0;
  onednn::RunnerOptions options;
  options.blocked_layouts = true;
  for (const NamedProblem& np : onednn_problems())
    check_against_onednn(np, true, &compared, options);
  EXPECT_EQ(compared, static_cast<int>(onednn_problems().size()));
}

TEST(CpuFallbackVsOneDnn, RandomProblems) {
  int compared = 0;
  const std::vector<NamedProblem> problems = random_problems(777, 120);
  for (const NamedProblem& np : problems)
    check_against_onednn(np, false, &compared);
  // oneDNN cannot express a few (negative padding_r for output padding, ceil-mode include-pad).
  EXPECT_GE(compared, static_cast<int>(problems.size()) * 2 / 3);
  std::cout << "compared with oneDNN on " << compared << " of " << problems.size() << " random problems\n";
}

TEST(OneDnnRunner, VersionAndEmptyBatch) {
  EXPECT_NE(onednn::version().find("oneDNN"), std::string::npos);
  ProblemDesc d = conv_desc(0, 2, 3, {5, 5}, {3, 3});
  Result<onednn::Runner> r = onednn::Runner::create(must_make(d));
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->run(nullptr, nullptr, nullptr, nullptr).is_ok());
}
#else
TEST(CpuFallbackVsOneDnn, Skipped) {
  GTEST_SKIP() << "built without oneDNN";
}
#endif

} // namespace
} // namespace convarith::test
