// cli/draw/draw_command.hpp — `convarith draw` with its streams made explicit, so tests run it
// in-process. cmd_draw (commands.hpp) is draw_main with std::cout and std::cerr. `args` excludes
// the program and subcommand names. Exit status: 0 success, 2 a bad layer or bad option (message
// on err), 1 any other failure (GIF support missing, a file that cannot be written).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace convarith::cli {

int draw_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
const char* draw_help();

} // namespace convarith::cli
