// host/status.cpp — Status names and formatting; the version string.
#include "convarith/status.hpp"

#include "convarith/version.hpp"

namespace convarith {

const char* status_code_name(StatusCode code) {
  switch (code) {
  case StatusCode::kOk:
    return "kOk";
  case StatusCode::kInvalidArgument:
    return "kInvalidArgument";
  case StatusCode::kNotSupported:
    return "kNotSupported";
  case StatusCode::kOutOfRange:
    return "kOutOfRange";
  case StatusCode::kDeviceError:
    return "kDeviceError";
  case StatusCode::kInternal:
    return "kInternal";
  }
  return "kUnknown";
}

std::string Status::to_string() const {
  if (is_ok())
    return "kOk";
  return std::string(status_code_name(code_)) + ": " + message_;
}

const char* version_string() {
  return "0.1.0";
}

} // namespace convarith
