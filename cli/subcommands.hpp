// cli/subcommands.hpp — `convarith shape` and `convarith run` with their streams made explicit, so
// tests run them in-process and read what they print. cmd_shape / cmd_run (commands.hpp) are
// these with std::cout and std::cerr. `args` excludes the program and subcommand names.
// Exit status: 0 success, 2 a bad layer or bad input (message on err), 1 any other failure.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace convarith::cli {

int shape_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// `convarith model` (cli/cmd_model.cpp): the bound model, modeled not measured.
int model_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

const char* shape_help();
const char* run_help();

// argv[1..argc) as strings (argv[0] is the subcommand name).
std::vector<std::string> args_after_command(int argc, char** argv);

} // namespace convarith::cli
