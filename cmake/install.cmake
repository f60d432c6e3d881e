# `cmake --install` puts the command, the library and an installed package in the prefix, so that
# a project finds it with find_package(hetpipe) and links hetpipe::hetpipe. The library is static:
# its parts (io, host, cuda) are installed as link-only targets, and the package's config finds
# the libraries they need (the Debian packages of scripts/deps.txt, and the CUDA runtime when the
# GPU lanes are compiled in). tests/install checks it from a project of its own.
include(CMakePackageConfigHelpers)

set(_hetpipe_targets hetpipe hetpipe_headers hetpipe_io hetpipe_host)
if(HETPIPE_WITH_CUDA)
  list(APPEND _hetpipe_targets hetpipe_cuda)
endif()
install(TARGETS ${_hetpipe_targets} EXPORT hetpipeTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/pipeline/include/hetpipe
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(HETPIPE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/hetpipe)
install(EXPORT hetpipeTargets NAMESPACE hetpipe:: DESTINATION ${HETPIPE_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hetpipeConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/hetpipeConfig.cmake
                              INSTALL_DESTINATION ${HETPIPE_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/hetpipeConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/hetpipeConfig.cmake
              ${PROJECT_BINARY_DIR}/hetpipeConfigVersion.cmake
        DESTINATION ${HETPIPE_INSTALL_CMAKEDIR})
