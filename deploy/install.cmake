# install.cmake - what `cmake --install` puts where, in the GNUInstallDirs
# places: the binary, its migrations (found relative to the binary, see
# worker/migrate.c), the systemd unit, the alert rules, the example
# configuration and the documents.
#
# The unit is written at install time, not at configure time, so that its
# ExecStart names the binary where it really lands, also with
# `cmake --install BUILD --prefix DIR`.

set(ORDERD_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
  "where the systemd unit is installed (relative: under the prefix)")

install(TARGETS orderd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/schema/
  DESTINATION ${ORDERD_SCHEMA_INSTALL_DIR}
  FILES_MATCHING PATTERN "[0-9][0-9][0-9][0-9]_*.sql")
install(FILES ${CMAKE_SOURCE_DIR}/deploy/orderd-alerts.yml
  ${CMAKE_SOURCE_DIR}/deploy/orderd.conf.example
  DESTINATION ${CMAKE_INSTALL_DATADIR}/orderd)
file(GLOB ORDERD_DOCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${ORDERD_DOCS}
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(CODE "
  set(ORDERD_UNIT_IN \"${CMAKE_SOURCE_DIR}/deploy/orderd.service.in\")
  set(ORDERD_UNIT_DIR \"${ORDERD_SYSTEMD_UNIT_DIR}\")
  set(ORDERD_REL_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(ORDERD_REL_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
  include(\"${CMAKE_SOURCE_DIR}/deploy/install-unit.cmake\")
")
