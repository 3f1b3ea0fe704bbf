// convarith/status.hpp — the error type every public call returns.
//
// A Status is a code and a message. The library never throws across its API, never exits and
// never prints: every failure comes back as a Status whose message names the field, the numbers
// and the broken condition, e.g.
//   "conv axis 0: effective kernel 5 (k=3, dilation=2) exceeds padded input 4 (i=2, pad 1+1)".
// Compiles without CUDA headers.
#pragma once

#include <string>
#include <utility>

namespace convarith {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument, // the problem or an argument breaks a rule of the arithmetic or the API
  kNotSupported,    // valid, but the chosen algorithm or device cannot run it (the message says why)
  kOutOfRange,      // a size does not fit in 64 bits / the index type
  kDeviceError,     // the CUDA runtime reported an error, or no device is usable
  kInternal,        // a bug in convarith
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "kInvalidArgument: <message>" or "kOk".
  std::string to_string() const;

private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status not_supported(std::string m) {
  return Status(StatusCode::kNotSupported, std::move(m));
}
inline Status out_of_range(std::string m) {
  return Status(StatusCode::kOutOfRange, std::move(m));
}
inline Status device_error(std::string m) {
  return Status(StatusCode::kDeviceError, std::move(m));
}
inline Status internal_error(std::string m) {
  return Status(StatusCode::kInternal, std::move(m));
}

// A value or the Status that explains why there is none.
template <typename T> class [[nodiscard]] Result {
public:
  Result(T value) : value_(std::move(value)), has_value_(true) {} // NOLINT(google-explicit-constructor)
  // An OK status without a value is a bug of the caller: it becomes kInternal. (Built in the
  // initializer: assigning a Status would discard a [[nodiscard]] Status& that nvcc warns about.)
  Result(Status status) // NOLINT(google-explicit-constructor)
      : status_(status.is_ok() ? internal_error("Result constructed from an OK status without a value")
                               : std::move(status)) {}

  bool is_ok() const { return has_value_; }
  explicit operator bool() const { return has_value_; }
  const Status& status() const { return status_; }
  // Precondition: is_ok().
  const T& value() const& { return value_; }
  T& value() & { return value_; }
  T&& value() && { return std::move(value_); }
  const T& operator*() const& { return value_; }
  const T* operator->() const { return &value_; }

private:
  T value_{};
  Status status_;
  bool has_value_ = false;
};

} // namespace convarith

#define CONVARITH_RETURN_IF_ERROR(expr)                                                                                \
  do {                                                                                                                 \
    ::convarith::Status convarith_status_ = (expr);                                                                    \
    if (!convarith_status_.is_ok())                                                                                    \
      return convarith_status_;                                                                                        \
  } while (0)
