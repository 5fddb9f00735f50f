# apr_add_backend(<name> SOURCES <src>... )
#
# Makes the MODULE library libapr_backend_<name>.so from <src>, built against the SDK headers
# only. In apr's own tree the file lands in the shared backends folder and installs under
# <prefix>/lib/apr/backends (COMPONENT backend_<name>, one package per backend). Outside it
# (find_package(AprSDK)), the file is built in the current binary folder and installs under
# <prefix>/${APR_SDK_BACKEND_DIR}, where an apr installed in the same prefix finds it. Symbols are hidden except the two the ABI exports, and every
# symbol must resolve at link time (-Wl,--no-undefined): a plugin cannot lean on the core.
function(apr_add_backend name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  set(target apr_backend_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "apr_backend_${name}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET apr::sdk)
    target_link_libraries(${target} PRIVATE apr::sdk)
  else()
    target_link_libraries(${target} PRIVATE AprSDK::sdk)
  endif()
  target_link_options(${target} PRIVATE "LINKER:--no-undefined")
  if(DEFINED APR_BACKEND_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${APR_BACKEND_OUTPUT_DIR}")
  endif()
  if(DEFINED APR_BACKEND_REL_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION "${APR_BACKEND_REL_DIR}" COMPONENT backend_${name})
  elseif(DEFINED APR_SDK_BACKEND_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION "${APR_SDK_BACKEND_DIR}" COMPONENT backend_${name})
  endif()
endfunction()
