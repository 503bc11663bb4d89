#include <kiln/report/plot.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace kiln::report {
namespace {

// The step among 1, 2, 5 x 10^k nearest to span / target.
double nice_step(double span, int target) {
  const double raw = span / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double residual = raw / magnitude;
  const double nice = residual < 1.5 ? 1 : residual < 3 ? 2 : residual < 7 ? 5 : 10;
  return nice * magnitude;
}

}  // namespace

std::vector<double> nice_ticks(double low, double high, int target, double min_step) {
  if (!std::isfinite(low) || !std::isfinite(high) || high < low) return {};
  if (high == low) {
    const double half = std::max(low == 0 ? 1.0 : std::abs(low) * 0.1, min_step);
    low -= half;
    high += half;
  }
  const double step = std::max(nice_step(high - low, target), min_step);
  const double first = std::floor(low / step + 1e-9);
  const double last = std::ceil(high / step - 1e-9);
  // A span that overflows a double, or one too small for a step to represent:
  // the two ends are ticks enough.
  if (!std::isfinite(step) || step <= 0 || !(last - first <= 1000)) return {low, high};
  std::vector<double> ticks;
  for (double i = first; i <= last; ++i) {
    const double tick = i * step;
    ticks.push_back(std::abs(tick) < step * 1e-9 ? 0.0 : tick);  // no "-0" or "1e-17"
  }
  return ticks;
}

std::string tick_text(double value, double step) {
  if (value == 0) return "0";
  const double size = std::max(std::abs(value), step);
  if (size >= 1e6 && step >= 1e5) return fmt::format("{:g}M", value / 1e6);
  if (size >= 1e4 && step >= 1e3) return fmt::format("{:g}k", value / 1e3);
  // Exponents are rounded so that a step of 1e-4, computed as 9.99...e-5, still
  // prints as one.
  const auto exponent = [](double x) { return static_cast<int>(std::floor(std::log10(x) + 1e-9)); };
  if (step < 0.99e-4) {
    const int digits = std::clamp(exponent(size) - exponent(step), 0, 6);
    return fmt::format("{:.{}e}", value, digits);
  }
  return fmt::format("{:.{}f}", value, std::max(0, -exponent(step)));
}

std::string escape_xml(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

}  // namespace kiln::report
