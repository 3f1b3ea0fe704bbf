// convarith/convarith.hpp — the umbrella header.
#pragma once

#include "convarith/arithmetic.hpp"
#include "convarith/device.hpp"
#include "convarith/plan.hpp"
#include "convarith/problem.hpp"
#include "convarith/status.hpp"
#include "convarith/version.hpp"
