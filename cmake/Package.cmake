# Release artifacts (make package; docs/install.md): the install layout, the generated man page
# and shell completions, and the .deb (CPack). The portable tarball is staged from the same
# install rules by scripts/package.sh.
#
# Components: `runtime` (the binary, the man page, completions: what `make install PREFIX=…`
# and the tarball install) and `service` (the systemd unit and /etc/toolwarden: the .deb only).

set(TW_ASSETS ${CMAKE_BINARY_DIR}/package-assets)
find_program(HELP2MAN help2man)
if(HELP2MAN)
  add_custom_command(
    OUTPUT ${TW_ASSETS}/toolwarden.1.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${TW_ASSETS}
    COMMAND ${HELP2MAN} --no-info --no-discard-stderr
            --name "a policy-enforcing gateway for the Model Context Protocol"
            --include ${PROJECT_SOURCE_DIR}/packaging/toolwarden.h2m
            --output ${TW_ASSETS}/toolwarden.1 $<TARGET_FILE:toolwarden>
    COMMAND gzip -9nf ${TW_ASSETS}/toolwarden.1
    DEPENDS toolwarden ${PROJECT_SOURCE_DIR}/packaging/toolwarden.h2m
    COMMENT "Man page from toolwarden --help (help2man)")
  set(TW_MAN_PAGE ${TW_ASSETS}/toolwarden.1.gz)
endif()
set(TW_COMPLETIONS ${TW_ASSETS}/toolwarden.bash ${TW_ASSETS}/_toolwarden ${TW_ASSETS}/toolwarden.fish)
add_custom_command(
  OUTPUT ${TW_COMPLETIONS}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${TW_ASSETS}
  COMMAND $<TARGET_FILE:toolwarden> completions bash > ${TW_ASSETS}/toolwarden.bash
  COMMAND $<TARGET_FILE:toolwarden> completions zsh > ${TW_ASSETS}/_toolwarden
  COMMAND $<TARGET_FILE:toolwarden> completions fish > ${TW_ASSETS}/toolwarden.fish
  DEPENDS toolwarden
  COMMENT "Shell completions from the command line's definition")
add_custom_target(package-assets ALL DEPENDS ${TW_MAN_PAGE} ${TW_COMPLETIONS})

install(TARGETS toolwarden RUNTIME DESTINATION bin COMPONENT runtime)
if(TW_MAN_PAGE)
  install(FILES ${TW_MAN_PAGE} DESTINATION share/man/man1 COMPONENT runtime)
endif()
install(FILES ${TW_ASSETS}/toolwarden.bash DESTINATION share/bash-completion/completions
        RENAME toolwarden COMPONENT runtime)
install(FILES ${TW_ASSETS}/toolwarden.fish DESTINATION share/fish/vendor_completions.d
        COMPONENT runtime)
# zsh looks in vendor-completions under /usr (Debian's zsh), in site-functions under any other
# prefix: decided when installing, not when configuring, since CPack installs with /usr.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(tw_zsh_dir share/zsh/vendor-completions)
  else()
    set(tw_zsh_dir share/zsh/site-functions)
  endif()
  file(INSTALL \"${TW_ASSETS}/_toolwarden\" DESTINATION \"\${CMAKE_INSTALL_PREFIX}/\${tw_zsh_dir}\")
" COMPONENT runtime)
install(FILES README.md DESTINATION share/doc/toolwarden COMPONENT runtime)

install(FILES packaging/toolwarden.service DESTINATION /usr/lib/systemd/system COMPONENT service)
install(FILES packaging/toolwarden.yaml DESTINATION /etc/toolwarden COMPONENT service)
install(FILES packaging/demo-policy.yaml DESTINATION /etc/toolwarden/policies RENAME demo.yaml
        COMPONENT service)

set(CPACK_PACKAGE_NAME toolwarden)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "toolwarden maintainers <maintainers@toolwarden.dev>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "policy-enforcing gateway for the Model Context Protocol")
set(CPACK_PACKAGE_DESCRIPTION
    "toolwarden sits between AI agents and MCP servers: every tools/call is allowed, denied, rate-limited or held for approval by a policy before it reaches the server, and recorded.")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)  # with CPACK_SET_DESTDIR, the prefix the install step uses
set(CPACK_SET_DESTDIR ON)  # the service component installs to absolute paths (/etc, /usr/lib)
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};toolwarden;ALL;/")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The binary needs the C library only (cmake/Portable.cmake); useradd comes from passwd.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.35), passwd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libpq5, nodejs")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR}/dist)
include(CPack)
