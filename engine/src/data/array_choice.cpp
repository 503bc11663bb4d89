#include <kiln/data/array_choice.h>
#include <kiln/error.h>

#include <fmt/format.h>

#include <algorithm>

namespace kiln::data {

std::vector<ArrayChoice> parse_array_choices(const std::vector<std::string>& entries) {
  if (entries.empty()) throw ConfigError("arrays: name at least one array to import");
  std::vector<ArrayChoice> choices;
  for (const std::string& entry : entries) {
    const std::size_t equals = entry.find('=');
    ArrayChoice choice{entry.substr(0, equals),
                       equals == std::string::npos ? entry : entry.substr(equals + 1)};
    if (choice.name.empty() || choice.member.empty())
      throw ConfigError(
          fmt::format("arrays: '{}' is not NAME or NAME=MEMBER (both non-empty)", entry));
    if (choice.name == "." || choice.name.find('/') != std::string::npos)
      throw ConfigError(fmt::format(
          "arrays: '{}' cannot name an array of a dataset version (no '/', not '.')", choice.name));
    if (std::any_of(choices.begin(), choices.end(),
                    [&](const ArrayChoice& other) { return other.name == choice.name; }))
      throw ConfigError(fmt::format("arrays: the name '{}' is given twice", choice.name));
    choices.push_back(std::move(choice));
  }
  return choices;
}

}  // namespace kiln::data
