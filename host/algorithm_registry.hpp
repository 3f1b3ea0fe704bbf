// host/algorithm_registry.hpp — how the one algorithm table is assembled (internal).
// plan.cpp builds algorithm_table() once: the CPU rows first, then the CUDA kernel rows,
// each list in `auto` preference order.
#pragma once

#include <vector>

#include "convarith/plan.hpp"

namespace convarith::detail {
void append_cpu_algorithms(std::vector<Algorithm>& table);    // host/cpu/cpu_algorithms.cpp
void append_kernel_algorithms(std::vector<Algorithm>& table); // kernels/kernel_algorithms.cpp
} // namespace convarith::detail
