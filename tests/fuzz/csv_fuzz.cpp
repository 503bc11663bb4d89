// CSV reader (data/csv.cpp), with the label column the import stage asks for by
// default and with none: any input either reads or gives a DataError.
#include <kiln/data/csv.h>
#include <kiln/error.h>

#include "fuzz/fuzz_input.h"

namespace {

void check(const kiln::data::CsvTable& table) {
  const auto rows = table.x.rows();
  if (table.x.shape.size() != 2 ||
      table.x.shape[1] != static_cast<std::int64_t>(table.feature_columns.size()) ||
      (!table.y.name.empty() && table.y.rows() != rows))
    __builtin_trap();  // x is [rows, features] and y has one label per row
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = kiln::fuzz::write_input(data, size, "input.csv");
  for (const char* label : {"label", ""}) {
    try {
      check(kiln::data::read_csv(file, label));
    } catch (const kiln::DataError&) {
    }
  }
  return 0;
}
