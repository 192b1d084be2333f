// The JSON record of one run: what ci/testhost_lib/bench.py reads back from the test host.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "kvmx/bench/bench.hpp"

namespace kvmx::bench {
namespace {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string number(std::uint64_t v) { return std::to_string(v); }

}  // namespace

std::string to_json(const Target& t, const Sizes& s, const std::vector<Result>& results) {
  std::string j = "{\"tool\":\"kvmx-bench\",\"version\":1,\"target\":{";
  j += "\"device\":" + quote(t.device) + ",\"impl\":" + quote(t.impl) + ",\"requested\":" + quote(t.requested) +
       ",\"mode\":" + quote(t.mode) + ",\"how\":" + quote(t.how) + ",\"available\":" + (t.unavailable ? "false" : "true");
  if (t.unavailable) j += ",\"unavailable\":" + quote(*t.unavailable);
  j += "},\"sizes\":{\"scale\":" + quote(s.scale) + ",\"reps\":" + number(std::uint64_t{s.reps}) +
       ",\"exit_iterations\":" + number(s.exit_iterations) + ",\"touch_mib\":" + number(s.touch_mib) +
       ",\"random_mib\":" + number(s.random_mib) + ",\"random_reads\":" + number(s.random_reads) +
       ",\"churn_iterations\":" + number(s.churn_iterations) + ",\"cr3_spaces\":" + number(s.cr3_spaces) +
       ",\"cr3_iterations\":" + number(s.cr3_iterations) + ",\"fork_pages\":" + number(s.fork_pages) + "}";
  j += ",\"results\":[";
  bool first = true;
  for (const Result& r : results) {
    if (!first) j += ",";
    first = false;
    j += "{\"workload\":" + quote(r.workload) + ",\"unit\":" + quote(r.unit) + ",\"ok\":" + (r.failure ? "false" : "true");
    if (r.failure) j += ",\"failure\":" + quote(*r.failure);
    if (!r.failure) {
      j += ",\"ns_per_iter\":{\"median\":" + number(r.median_ns) + ",\"min\":" + number(r.min_ns) +
           ",\"max\":" + number(r.max_ns) + "}";
    }
    j += ",\"reps\":[";
    for (std::size_t i = 0; i < r.reps.size(); ++i) {
      const Rep& rep = r.reps[i];
      if (i) j += ",";
      j += "{\"seconds\":" + number(rep.seconds) + ",\"iterations\":" + number(rep.iterations) + ",\"exits\":{";
      bool first_exit = true;
      for (const auto& [name, count] : rep.exits) {
        if (!first_exit) j += ",";
        first_exit = false;
        j += quote(name) + ":" + number(count);
      }
      j += "}}";
    }
    j += "]}";
  }
  return j + "]}";
}

}  // namespace kvmx::bench
