// cli/main.cpp — `convarith SUBCOMMAND ...`: dispatches to cli/commands.hpp. Each subcommand gets
// argv with argv[0] = its own name, so it parses argv[1..argc) like a program of its own.
//
// Two last lines of defence for every command: an allocation that fails anyway (every size-driven
// one is checked first, see cli/io.hpp) ends the command with a message and exit 1 instead of an
// abort; and standard output is flushed and checked at the end, so a failed write (a full disk,
// `> /dev/full`, a closed pipe) is exit 1 with a message on stderr, never a silent exit 0.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>

#include "commands.hpp"
#include "convarith/version.hpp"

namespace {

const char kUsage[] = R"(usage: convarith COMMAND [options]

Commands:
  shape   the output shape of a layer and the paper's relationship per axis
  run     run a layer on .npy files through a convarith Plan (CPU or CUDA), optionally checked
  bench   time a layer or the layer suite
  draw    draw a layer's arithmetic
  model   the bound model: modeled (not measured) GPU time per kernel and layer
  help    this text; `convarith help COMMAND` (or `convarith COMMAND --help`) for a command's options

Layers are written as ONNX attributes, e.g.
  convarith shape conv --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1

Options:
  --help, -h     this text
  --version      the version
)";

using Command = int (*)(int, char**);

Command find_command(const char* name) {
  if (std::strcmp(name, "shape") == 0)
    return convarith::cli::cmd_shape;
  if (std::strcmp(name, "run") == 0)
    return convarith::cli::cmd_run;
  if (std::strcmp(name, "bench") == 0)
    return convarith::cli::cmd_bench;
  if (std::strcmp(name, "draw") == 0)
    return convarith::cli::cmd_draw;
  if (std::strcmp(name, "model") == 0)
    return convarith::cli::cmd_model;
  return nullptr;
}

// The command's exit status, or 1 when its output did not reach standard output.
int finish(int code) {
  errno = 0;
  std::cout.flush(); // synced with stdio: this already flushes stdout and may fail
  const bool flushed = std::fflush(stdout) == 0;
  const int why = errno;
  if (!flushed || std::ferror(stdout) || !std::cout.good()) {
    std::fprintf(stderr, "convarith: writing to standard output failed (%s)\n",
                 why != 0 ? std::strerror(why) : "an earlier write failed");
    return code == 0 ? 1 : code;
  }
  return code;
}

int dispatch(int argc, char** argv);

} // namespace

int main(int argc, char** argv) {
  int code = 1;
  try {
    code = dispatch(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "convarith: out of memory (an allocation failed; nothing was written)\n");
    code = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convarith: internal error: %s\n", e.what());
    code = 1;
  }
  return finish(code);
}

namespace {

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const char* first = argv[1];
  if (std::strcmp(first, "--version") == 0 || std::strcmp(first, "version") == 0) {
    std::printf("convarith %s\n", convarith::version_string());
    return 0;
  }
  if (std::strcmp(first, "help") == 0 || std::strcmp(first, "--help") == 0 || std::strcmp(first, "-h") == 0) {
    if (argc >= 3) {
      if (Command c = find_command(argv[2])) {
        char help_flag[] = "--help";
        char* sub_argv[] = {argv[2], help_flag, nullptr};
        return c(2, sub_argv);
      }
      std::fprintf(stderr, "convarith: unknown command '%s'\n\n%s", argv[2], kUsage);
      return 2;
    }
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (Command c = find_command(first))
    return c(argc - 1, argv + 1);
  std::fprintf(stderr, "convarith: unknown command '%s'\n\n%s", first, kUsage);
  return 2;
}

} // namespace
