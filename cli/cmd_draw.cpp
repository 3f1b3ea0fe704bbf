// cli/cmd_draw.cpp — placeholder until `convarith draw` lands (it is being written now).
#include <cstdio>

#include "commands.hpp"

namespace convarith::cli {
int cmd_draw(int, char**) {
  std::fprintf(stderr, "convarith draw: not built yet\n");
  return 1;
}
}  // namespace convarith::cli
