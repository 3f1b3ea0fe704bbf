// Uses the installed library: validates a layer, plans it on the CPU and checks one output value.
#include <convarith/convarith.hpp>

#include <cstdio>
#include <vector>

int main() {
  convarith::ProblemDesc d;
  d.op = convarith::Op::kConv;
  d.n = 1, d.c = 1, d.k = 1, d.rank = 2;
  d.input = {5, 5, 1}, d.kernel = {3, 3, 1}, d.stride = {2, 2, 1};
  d.pad_lo = {1, 1, 0}, d.pad_hi = {1, 1, 0};
  convarith::Result<convarith::ConvProblem> p = convarith::ConvProblem::make(d);
  if (!p)
    return std::fprintf(stderr, "%s\n", p.status().to_string().c_str()), 1;
  convarith::Result<convarith::Plan> plan = convarith::Plan::create(*p, convarith::Device::kCpu);
  if (!plan)
    return std::fprintf(stderr, "%s\n", plan.status().to_string().c_str()), 1;
  std::vector<float> x(25, 1.0f), w(9, 1.0f), y(static_cast<size_t>(p->y_elements()), -1.0f);
  std::vector<unsigned char> ws(plan->workspace_bytes());
  convarith::Status s = plan->run(x.data(), w.data(), nullptr, y.data(), ws.data(), ws.size());
  if (!s)
    return std::fprintf(stderr, "%s\n", s.to_string().c_str()), 1;
  // padding_strides (paper): 5x5 input, 3x3 kernel, stride 2, pad 1 -> 3x3; the centre reads 9 ones,
  // the corner 4.
  if (p->y_elements() != 9 || y[4] != 9.0f || y[0] != 4.0f)
    return std::fprintf(stderr, "wrong result\n"), 1;
  std::printf("consumer: convarith %s, %s -> 3x3 via %s: ok\n", convarith::version_string(), p->name().c_str(),
              plan->algorithm());
  return 0;
}
