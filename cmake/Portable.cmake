# TW_PORTABLE: a toolwarden binary that needs nothing on the host but the C library (make
# package). Every other dependency is linked from Debian's static libraries; spdlog and fmt,
# which Debian ships only as shared libraries, are used header-only; libstdc++ and libgcc are
# linked statically; libpq is loaded at run time by the one feature that uses it (src/pg).
# The binary's glibc symbol versions are checked by tests/package (GLIBC_2.35 at most).
#
# Included twice: with TW_PORTABLE_STAGE "before" ahead of find_package (library variants are
# chosen there), and "after" it (imported targets repointed at the static archives).

if(TW_PORTABLE_STAGE STREQUAL "before")
  set(Boost_USE_STATIC_LIBS ON)
  set(OPENSSL_USE_STATIC_LIBS TRUE)
  return()
endif()

function(tw_static_archive out name)
  find_library(${out} NAMES lib${name}.a REQUIRED NO_CACHE)
  set(${out} ${${out}} PARENT_SCOPE)
endfunction()

tw_static_archive(TW_YAML_CPP_A yaml-cpp)
tw_static_archive(TW_RE2_A re2)
tw_static_archive(TW_HIREDIS_A hiredis)
tw_static_archive(TW_SQLITE_A sqlite3)
tw_static_archive(TW_SSL_A ssl)
tw_static_archive(TW_CRYPTO_A crypto)

# yaml-cpp's config exports a shared target only; SQLite's find module an UNKNOWN one.
set_target_properties(yaml-cpp PROPERTIES IMPORTED_LOCATION_NONE "${TW_YAML_CPP_A}"
                                          IMPORTED_LOCATION "${TW_YAML_CPP_A}" IMPORTED_SONAME "")
set_target_properties(SQLite::SQLite3 PROPERTIES IMPORTED_LOCATION "${TW_SQLITE_A}"
                                                 INTERFACE_LINK_LIBRARIES "${CMAKE_DL_LIBS};m")
# FindOpenSSL honours OPENSSL_USE_STATIC_LIBS only on a first configure (it caches its paths).
set_target_properties(OpenSSL::Crypto PROPERTIES IMPORTED_LOCATION "${TW_CRYPTO_A}")
set_target_properties(OpenSSL::SSL PROPERTIES IMPORTED_LOCATION "${TW_SSL_A}")
set_target_properties(PkgConfig::RE2 PROPERTIES INTERFACE_LINK_LIBRARIES "${TW_RE2_A};Threads::Threads")
set_target_properties(PkgConfig::HIREDIS PROPERTIES INTERFACE_LINK_LIBRARIES "${TW_HIREDIS_A}")

# Header-only logging: spdlog's header-only target would still link the shared fmt.
set_target_properties(spdlog::spdlog_header_only PROPERTIES
                      INTERFACE_LINK_LIBRARIES "Threads::Threads;fmt::fmt-header-only")
set(TW_SPDLOG spdlog::spdlog_header_only)
set(TW_FMT fmt::fmt-header-only)

add_link_options(-static-libstdc++ -static-libgcc)
