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

// How many of each the shared state holds for all processes of a host (one slot each):
// the configuration may name no more, so every key and target it names has its slot.
constexpr size_t kStateKeys = 1024;     // client keys with limits or counters
constexpr size_t kStateTargets = 256;   // targets (endpoint/deployment)
constexpr size_t kStateProcesses = 256; // processes sharing the file at once
constexpr size_t kStateSeries = 4096;   // metric series (a histogram takes 14)
