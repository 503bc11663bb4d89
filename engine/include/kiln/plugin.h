// The plugin ABI. A plugin is a shared module exporting ONE extern "C" function,
// kiln_plugin_entry, that returns a pointer to a constant descriptor. The loader
// reads abi_version first and refuses a mismatch before touching anything else;
// only then does it call register_stages. No static constructors register anything.
//
//   static void register_stages(kiln::StageRegistrar& registrar) { ... }
//   KILN_PLUGIN("my_plugin", "1.0.0", register_stages)
#pragma once

#include <kiln/stage.h>
#include <kiln/version.h>

#include <cstdint>

// KILN_ABI_VERSION (version.h) is bumped whenever StageType, StageContext,
// Artifact, Params or the descriptor change in a way a built plugin would misread.
#define KILN_PLUGIN_ENTRY_SYMBOL "kiln_plugin_entry"

extern "C" {

struct KilnPluginDescriptor {
  std::uint32_t abi_version;  // must stay the first member
  const char* name;
  const char* version;
  const char* build_info;  // compiler and CUDA version the plugin was built with
  void (*register_stages)(kiln::StageRegistrar& registrar);
};

typedef const KilnPluginDescriptor* (*KilnPluginEntry)(void);
}

#define KILN_STRINGIFY_(x) #x
#define KILN_STRINGIFY(x) KILN_STRINGIFY_(x)

#if defined(__CUDACC_VER_MAJOR__)
#define KILN_BUILD_CUDA \
  " cuda " KILN_STRINGIFY(__CUDACC_VER_MAJOR__) "." KILN_STRINGIFY(__CUDACC_VER_MINOR__)
#else
#define KILN_BUILD_CUDA ""
#endif

#if defined(__clang__)
#define KILN_BUILD_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define KILN_BUILD_COMPILER "gcc " __VERSION__
#else
#define KILN_BUILD_COMPILER "unknown compiler"
#endif

#define KILN_PLUGIN(plugin_name, plugin_version, register_function)                                \
  extern "C" __attribute__((visibility("default"))) const KilnPluginDescriptor* kiln_plugin_entry( \
      void) {                                                                                      \
    static const KilnPluginDescriptor descriptor{KILN_ABI_VERSION, plugin_name, plugin_version,    \
                                                 KILN_BUILD_COMPILER KILN_BUILD_CUDA,              \
                                                 &register_function};                              \
    return &descriptor;                                                                            \
  }
