# install-unit.cmake - run by `cmake --install`: writes orderd.service from
# orderd.service.in with the paths of this installation (the prefix given
# to cmake --install, DESTDIR in front of where the file goes but not in
# the paths the unit names).

foreach(var ORDERD_UNIT_DIR ORDERD_REL_BINDIR ORDERD_REL_DOCDIR)
  if(IS_ABSOLUTE "${${var}}")
    set(${var}_FULL "${${var}}")
  else()
    set(${var}_FULL "${CMAKE_INSTALL_PREFIX}/${${var}}")
  endif()
endforeach()
set(ORDERD_BINDIR "${ORDERD_REL_BINDIR_FULL}")
set(ORDERD_DOCDIR "${ORDERD_REL_DOCDIR_FULL}")
set(unit "$ENV{DESTDIR}${ORDERD_UNIT_DIR_FULL}/orderd.service")
message(STATUS "Installing: ${unit}")
configure_file("${ORDERD_UNIT_IN}" "${unit}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${unit}")
