// Pipeline files (pipeline/parse.cpp, then resolve.cpp against kiln's standard
// stage types): any file either resolves or gives a ConfigError naming where.
#include <kiln/catalog.h>
#include <kiln/error.h>
#include <kiln/pipeline.h>

#include "fuzz/fuzz_input.h"

namespace {

// The standard plugins of this build (lib/kiln/plugins beside bin/), so that the
// seeds, kiln's own configs, get past the stage types into their parameters.
const kiln::StageCatalog& standard_catalog() {
  static const kiln::StageCatalog* catalog = [] {
    auto* loaded = new kiln::StageCatalog;
    loaded->load_directory(kiln::builtin_plugin_dir());
    if (loaded->find("train") == nullptr) __builtin_trap();  // plugins not built
    return loaded;
  }();
  return *catalog;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const kiln::StageCatalog& catalog = standard_catalog();
  const auto file = kiln::fuzz::write_input(data, size, "pipeline.yaml");
  try {
    const kiln::Pipeline pipeline = kiln::resolve_pipeline(kiln::parse_pipeline(file), catalog);
    if (pipeline.stages.empty()) __builtin_trap();  // a pipeline has at least one stage
  } catch (const kiln::ConfigError&) {
  }
  return 0;
}
