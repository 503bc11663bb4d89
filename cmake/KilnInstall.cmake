# Installs libkiln, its public headers, the kiln CLI, the standard plugins (from
# kiln_add_plugin) and a CMake package so plugins build out of tree with
# find_package(kiln) + kiln_add_plugin().
include(CMakePackageConfigHelpers)

set(KILN_CMAKE_DIR lib/cmake/kiln)
install(TARGETS kiln EXPORT kilnTargets
  LIBRARY DESTINATION lib
  INCLUDES DESTINATION include)
install(DIRECTORY engine/include/kiln DESTINATION include)
install(FILES ${PROJECT_BINARY_DIR}/engine/include/kiln/version.h DESTINATION include/kiln)
install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION ${KILN_CMAKE_DIR})

configure_package_config_file(cmake/kilnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kilnConfig.cmake INSTALL_DESTINATION ${KILN_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/kilnConfig.cmake
  ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  cmake/KilnPlugin.cmake
  DESTINATION ${KILN_CMAKE_DIR})
install(DIRECTORY configs/ DESTINATION share/kiln/configs)
