// convarith/version.hpp
#pragma once

#define CONVARITH_VERSION_MAJOR 0
#define CONVARITH_VERSION_MINOR 1
#define CONVARITH_VERSION_PATCH 0

namespace convarith {
const char* version_string(); // "0.1.0"
} // namespace convarith
