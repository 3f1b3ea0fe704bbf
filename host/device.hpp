// host/device.hpp — internal device helpers.
#pragma once

#include "convarith/plan.hpp"

namespace convarith::detail {
// OK when `ptr` (may be null) lives in the memory space `device` runs on: device or managed memory
// for kCuda, anything but device memory for kCpu. `what` names the argument in the message.
Status check_pointer_space(const void* ptr, const char* what, Device device);
} // namespace convarith::detail
