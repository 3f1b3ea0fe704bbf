// cli/cmd_bench.cpp — placeholder until `convarith bench` lands (it is being written now).
#include <cstdio>

#include "commands.hpp"

namespace convarith::cli {
int cmd_bench(int, char**) {
  std::fprintf(stderr, "convarith bench: not built yet\n");
  return 1;
}
}  // namespace convarith::cli
