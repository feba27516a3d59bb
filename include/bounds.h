// The longest names the proxy accepts, checked where they enter (the environment, the
// configuration file, a key file) with an error that names the limit. What is stored in a
// fixed slot of the shared state, or becomes a metric label, is never longer, so it is
// never cut later (shared_state.cpp asserts that each slot holds its bound).
#pragma once

#include <cstddef>

// A client key's (or admin key's) name: logs, metrics and the shared state's key slots.
constexpr size_t kLongestKeyName = 63;
// An endpoint's name in the configuration file.
constexpr size_t kLongestEndpointName = 63;
// A target's name, "endpoint/deployment": the shared state's target slots and metrics.
constexpr size_t kLongestTargetName = 127;
// A model name the operator configures (mapper, routing file, allowed or listed models,
// a key's models): the only model names that become metric labels.
constexpr size_t kLongestConfiguredModel = 256;
