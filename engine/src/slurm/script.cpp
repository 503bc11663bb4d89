#include <kiln/error.h>
#include <kiln/slurm.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <regex>

namespace kiln::slurm {
namespace {

long number(const std::string& text) {
  long value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

}  // namespace

long parse_time_limit(std::string_view text, std::string_view origin) {
  // sbatch(1): "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
  // "days-hours:minutes" and "days-hours:minutes:seconds".
  static const std::regex clock(R"((\d+)(?::(\d+))?(?::(\d+))?)");
  static const std::regex days(R"((\d+)-(\d+)(?::(\d+))?(?::(\d+))?)");
  const std::string value(text);
  std::smatch m;
  long seconds = -1;
  if (std::regex_match(value, m, days)) {
    seconds = number(m[1]) * 86400 + number(m[2]) * 3600 + number(m[3]) * 60 + number(m[4]);
  } else if (std::regex_match(value, m, clock)) {
    if (!m[2].matched)
      seconds = number(m[1]) * 60;
    else if (!m[3].matched)
      seconds = number(m[1]) * 60 + number(m[2]);
    else
      seconds = number(m[1]) * 3600 + number(m[2]) * 60 + number(m[3]);
  }
  if (seconds <= 0)
    throw ConfigError(fmt::format(
        "{} '{}': not a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, "
        "above zero)",
        origin, text));
  return seconds;
}

long parse_period(std::string_view text, std::string_view origin) {
  static const std::regex period(R"((\d+)\s*(s|sec|min|m|h|d)?)");
  const std::string value(text);
  std::smatch m;
  long seconds = 0;
  if (std::regex_match(value, m, period)) {
    const std::string unit = m[2].matched ? m[2].str() : "s";
    const long scale = unit == "d" ? 86400 : unit == "h" ? 3600 : (unit[0] == 'm' ? 60 : 1);
    seconds = number(m[1]) * scale;
  }
  if (seconds <= 0)
    throw ConfigError(fmt::format(
        "{} '{}': expected a period above zero such as 30s, 15min, 2h or 1d", origin, text));
  return seconds;
}

std::string shell_quote(std::string_view word) {
  static const std::regex plain(R"([A-Za-z0-9_@%+=:,./-]+)");
  const std::string text(word);
  if (!text.empty() && std::regex_match(text, plain)) return text;
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string render_script(const BatchScript& s) {
  std::string out = "#!/bin/bash\n";
  for (const auto& line : s.comment) out += fmt::format("# {}\n", line);
  auto directive = [&out](const std::string& text) { out += "#SBATCH " + text + "\n"; };
  directive("--job-name=" + shell_quote(s.job_name));
  directive(fmt::format("--nodes={}", s.nodes));
  directive(fmt::format("--ntasks-per-node={}", s.ntasks_per_node));
  if (s.gpus_per_node > 0) directive(fmt::format("--gpus-per-node={}", s.gpus_per_node));
  if (s.cpus_per_task > 0) directive(fmt::format("--cpus-per-task={}", s.cpus_per_task));
  if (!s.time.empty()) directive("--time=" + s.time);
  if (!s.partition.empty()) directive("--partition=" + shell_quote(s.partition));
  if (!s.account.empty()) directive("--account=" + shell_quote(s.account));
  if (!s.qos.empty()) directive("--qos=" + shell_quote(s.qos));
  if (!s.array.empty()) directive("--array=" + s.array);
  std::vector<std::string> dependencies;
  if (!s.dependency.empty()) dependencies.push_back(s.dependency);
  if (s.singleton) dependencies.emplace_back("singleton");
  if (!dependencies.empty())
    directive(fmt::format("--dependency={}", fmt::join(dependencies, ",")));
  // A failed upstream job ends this one, instead of leaving it pending for ever.
  if (!s.dependency.empty()) directive("--kill-on-invalid-dep=yes");
  if (!s.begin.empty()) directive("--begin=" + s.begin);
  if (!s.output.empty()) directive("--output=" + shell_quote(s.output.string()));
  if (s.requeue) {
    directive("--requeue");
    directive("--open-mode=append");  // one log across requeues
  }
  if (!s.signal.empty()) directive("--signal=" + s.signal);
  for (const auto& extra : s.extra_directives) directive(extra);
  out += "\n";
  for (const auto& [name, value] : s.exports)
    out += fmt::format("export {}={}\n", name, shell_quote(value));
  if (!s.workdir.empty()) out += "cd " + shell_quote(s.workdir.string()) + "\n";
  out += "exec";
  for (const auto& word : s.command) out += " " + shell_quote(word);
  return out + "\n";
}

}  // namespace kiln::slurm
