// CSV reader (data/csv.cpp), with the label column the import stage asks for by
// default, with none, and as a headerless table split on semicolons with the
// first column ignored: any input either reads or gives a DataError.
#include <kiln/data/csv.h>
#include <kiln/error.h>

#include "fuzz/fuzz_input.h"

namespace {

void check(const kiln::data::CsvTable& table) {
  const auto rows = table.x.rows();
  const auto features = static_cast<std::int64_t>(table.feature_columns.size());
  if (table.x.shape.size() != 2 || table.x.shape[1] != features ||
      static_cast<std::int64_t>(table.missing.size()) != features ||
      table.x.bytes.size() != static_cast<std::size_t>(rows * features) * sizeof(float) ||
      (!table.y.name.empty() && table.y.rows() != rows))
    __builtin_trap();  // x is [rows, features], a count per feature, y one label per row
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = kiln::fuzz::write_input(data, size, "input.csv");
  const kiln::data::CsvOptions options[] = {
      {},
      {.label_column = ""},
      {.delimiter = ';', .header = false, .label_column = "1", .ignored_columns = {"0"}},
  };
  for (const auto& option : options) {
    try {
      check(kiln::data::read_csv(file, option));
    } catch (const kiln::DataError&) {
    }
  }
  return 0;
}
