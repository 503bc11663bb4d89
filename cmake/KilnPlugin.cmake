# kiln_add_plugin(<name> SOURCES <files...> [LIBRARIES <targets...>])
#
# Builds a stage plugin: a shared module named kiln-<name>.so (target
# kiln_plugin_<name>) linked against libkiln. kiln loads every kiln-*.so it finds
# on its plugin search path; the module must define its entry point with
# KILN_PLUGIN(...) from <kiln/plugin.h>. Used for kiln's own plugins and, through
# find_package(kiln), for plugins built out of tree.
function(kiln_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "kiln_add_plugin(${name}): SOURCES is required")
  endif()
  set(target kiln_plugin_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE kiln::kiln ${ARG_LIBRARIES})
  # Only the entry symbol is exported; the rest of the plugin stays private so two
  # plugins never resolve each other's symbols.
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "kiln-${name}"
    CXX_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(KILN_IN_TREE)
    kiln_target_warnings(${target})
    # Same relative layout in the build and install trees: lib/kiln/plugins/ -> lib/.
    set_target_properties(${target} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/${KILN_PLUGIN_DIR}
      BUILD_RPATH "$ORIGIN/../.."
      INSTALL_RPATH "$ORIGIN/../..")
    install(TARGETS ${target} LIBRARY DESTINATION ${KILN_PLUGIN_DIR})
  endif()
endfunction()
