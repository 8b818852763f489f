# Install layout and the CPack .deb (docs/operations.md). Included from the top CMakeLists.txt.

# `cpack` must not rebuild every test first: installing needs only the agent.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(_pkg ${CMAKE_CURRENT_LIST_DIR})
install(FILES ${_pkg}/tributary.service DESTINATION /lib/systemd/system)
install(FILES ${_pkg}/tributary.yaml DESTINATION /etc/tributary
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(DIRECTORY DESTINATION /etc/tributary/secrets
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION share/doc/tributary)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION share/doc/tributary
        FILES_MATCHING PATTERN "*.md")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tributary)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Tributary maintainers <tributary@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Change data capture agent: PostgreSQL and MySQL changes to Kafka and files")
set(CPACK_PACKAGE_DESCRIPTION
    "Tributary tails PostgreSQL's write-ahead log and MySQL/MariaDB binlogs and\n\
turns every committed row change into a Debezium JSON event, delivered to\n\
Kafka or to files with checkpointed watermarks. It runs as a hardened\n\
systemd service.")
set(CPACK_STRIP_FILES TRUE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "Tributary maintainers <tributary@example.org>")
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# CPack does not mark /etc files as conffiles by itself.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_pkg}/debian/conffiles ${_pkg}/debian/postinst ${_pkg}/debian/prerm ${_pkg}/debian/postrm)
include(CPack)
