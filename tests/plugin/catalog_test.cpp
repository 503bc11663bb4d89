// The plugin loader: ABI handshake, missing symbol, duplicates, registration
// failures, and the loaded types' schemas.
#include <kiln/catalog.h>
#include <kiln/error.h>
#include <kiln/version.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "support/support.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(KILN_FIXTURE_PLUGINS) / name / ("kiln-" + name + ".so");
}

std::string plugin_error(const std::string& name, StageCatalog& catalog) {
  try {
    catalog.load_file(fixture(name));
  } catch (const PluginError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Catalog, LoadsTypesWithSchemasAndPluginInfo) {
  StageCatalog catalog;
  catalog.load_directory(fixture("toy").parent_path());
  EXPECT_EQ(catalog.type_names(),
            (std::vector<std::string>{"toy_all_types", "toy_fail", "toy_scale", "toy_sink",
                                      "toy_source"}));
  const StageType* scale = catalog.find("toy_scale");
  ASSERT_NE(scale, nullptr);
  ASSERT_NE(scale->params.find("factor"), nullptr);
  EXPECT_EQ(scale->params.find("factor")->default_value->get<double>(), 2.0);
  const PluginInfo& plugin = catalog.plugin_of("toy_scale");
  EXPECT_EQ(plugin.name, "toy");
  EXPECT_EQ(plugin.version, "1.0.0");
  EXPECT_EQ(plugin.sha256.size(), 64u);
  // The compiler that built the plugin, as the descriptor records it.
#if defined(__clang__)
  EXPECT_THAT(plugin.build_info, HasSubstr("clang"));
#else
  EXPECT_THAT(plugin.build_info, HasSubstr("gcc"));
#endif
}

TEST(Catalog, LoadingTheSameFileTwiceIsANoOp) {
  StageCatalog catalog;
  catalog.load_file(fixture("toy"));
  catalog.load_file(fixture("toy"));
  EXPECT_EQ(catalog.plugins().size(), 1u);
}

TEST(Catalog, RefusesAnAbiMismatchNamingBothVersions) {
  StageCatalog catalog;
  EXPECT_EQ(
      plugin_error("bad_abi", catalog),
      fmt::format("plugin {} built for ABI {}, engine speaks ABI {}: rebuild it against this kiln",
                  std::filesystem::canonical(fixture("bad_abi")).string(), KILN_ABI_VERSION + 1,
                  KILN_ABI_VERSION));
  EXPECT_TRUE(catalog.type_names().empty());
  EXPECT_TRUE(catalog.plugins().empty());
}

TEST(Catalog, RefusesAModuleWithoutTheEntrySymbol) {
  StageCatalog catalog;
  EXPECT_THAT(plugin_error("no_entry", catalog),
              HasSubstr("missing entry symbol 'kiln_plugin_entry'"));
}

TEST(Catalog, RefusesADuplicateStageTypeNamingBothPlugins) {
  StageCatalog catalog;
  catalog.load_file(fixture("toy"));
  const std::string error = plugin_error("duplicate", catalog);
  EXPECT_THAT(error, HasSubstr("stage type 'toy_source' is registered twice: by plugin 'toy'"));
  EXPECT_THAT(error, HasSubstr("and by plugin 'duplicate'"));
  EXPECT_EQ(catalog.plugins().size(), 1u);  // the duplicate did not stay loaded
}

TEST(Catalog, RegistrationExceptionsBecomePluginErrors) {
  StageCatalog catalog;
  EXPECT_THAT(plugin_error("throws", catalog),
              HasSubstr("registration failed: cannot initialise toy device"));
}

TEST(Catalog, NotAnElfFileIsAClearError) {
  test::TempDir dir;
  test::write_text(dir / "kiln-text.so", "not a shared object\n");
  StageCatalog catalog;
  try {
    catalog.load_directory(dir.path());
    FAIL() << "expected PluginError";
  } catch (const PluginError& e) {
    EXPECT_THAT(e.what(), HasSubstr("kiln-text.so: cannot load:"));
  }
}

TEST(Catalog, OnlyKilnPrefixedModulesAreLoadedFromADirectory) {
  test::TempDir dir;
  std::filesystem::copy_file(fixture("bad_abi"), dir / "libsomething.so");
  StageCatalog catalog;
  EXPECT_NO_THROW(catalog.load_directory(dir.path()));
  EXPECT_TRUE(catalog.plugins().empty());
}

TEST(Catalog, UnknownTypeListsKnownOnes) {
  StageCatalog catalog;
  catalog.load_file(fixture("toy"));
  try {
    catalog.get("toy_sikn", "p.yaml:3:11");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("p.yaml:3:11: unknown stage type 'toy_sikn' (did you mean 'toy_sink'?)"));
  }
}

TEST(Catalog, DefaultSearchPathStartsWithTheBuiltinDirThenKilnPluginPath) {
  ::setenv("KILN_PLUGIN_PATH", "/a:/b", 1);
  const auto path = default_plugin_path();
  ::unsetenv("KILN_PLUGIN_PATH");
  ASSERT_EQ(path.size(), 3u);
  EXPECT_EQ(path[0], std::filesystem::path(KILN_BINARY_DIR) / "lib/kiln/plugins");
  EXPECT_EQ(path[1], "/a");
  EXPECT_EQ(path[2], "/b");
}

}  // namespace
}  // namespace kiln
