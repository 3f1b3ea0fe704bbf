// cli/commands.hpp — the subcommands of the `convarith` tool. Each returns the process exit
// status: 0 success, 2 a bad layer / bad input (message on stderr), 1 any other failure.
#pragma once

namespace convarith::cli {
int cmd_shape(int argc, char** argv); // cli/cmd_shape.cpp
int cmd_run(int argc, char** argv);   // cli/cmd_run.cpp
int cmd_bench(int argc, char** argv); // cli/cmd_bench.cpp
int cmd_draw(int argc, char** argv);  // cli/cmd_draw.cpp
int cmd_model(int argc, char** argv); // cli/cmd_model.cpp
} // namespace convarith::cli
