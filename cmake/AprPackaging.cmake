# Debian packages, one per part (cpack -G DEB in the build folder):
#   apr                 core tools (apr-run, apr-make-model, ...) and the default model;
#                       provides the virtual package apr-abi-<N> for its plugin ABI version
#   apr-backend-<name>  one plugin each (cpu, vulkan, cuda: those this build has); each depends
#                       on apr-abi-<N>, so it only installs beside an apr that can load it
#   apr-sdk             headers, CMake package (find_package(AprSDK)), ABI documentation, the
#                       example backend and the conformance kit apr-plugin-check
# apr finds its plugins by listing <prefix>/lib/apr/backends at every start, so installing or
# removing a backend package is all it takes for apr to use it or stop using it.
# Each package holds exactly the files installed with its COMPONENT.

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "apr")
set(CPACK_PACKAGE_VENDOR "apr")
set(CPACK_PACKAGE_CONTACT "apr maintainers <apr@localhost>")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "apr: LLM runtime with parity-gated backend plugins")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
# Library dependencies (libspdlog, libvulkan1, ...) are read from the binaries when the tool is there.
find_program(APR_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(APR_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()

set(_apr_abi "apr-abi-${APR_SDK_ABI_VERSION}")

set(CPACK_COMPONENTS_ALL apr sdk)
set(CPACK_DEBIAN_APR_PACKAGE_NAME "apr")
set(CPACK_DEBIAN_APR_PACKAGE_PROVIDES "${_apr_abi}")
set(CPACK_COMPONENT_APR_DESCRIPTION "apr runtime: apr-run, tools and the default model (plugin ABI ${APR_SDK_ABI_VERSION})")
set(CPACK_DEBIAN_SDK_PACKAGE_NAME "apr-sdk")
set(CPACK_COMPONENT_SDK_DESCRIPTION "apr backend SDK: plugin ABI ${APR_SDK_ABI_VERSION} headers, CMake package, docs, apr-plugin-check")

foreach(_backend cpu vulkan cuda)
  if(TARGET apr_backend_${_backend})
    string(TOUPPER "BACKEND_${_backend}" _comp)
    list(APPEND CPACK_COMPONENTS_ALL backend_${_backend})
    set(CPACK_DEBIAN_${_comp}_PACKAGE_NAME "apr-backend-${_backend}")
    set(CPACK_DEBIAN_${_comp}_PACKAGE_DEPENDS "${_apr_abi}")
    set(CPACK_COMPONENT_${_comp}_DESCRIPTION "apr ${_backend} backend plugin (ABI ${APR_SDK_ABI_VERSION})")
  endif()
endforeach()

include(CPack)
