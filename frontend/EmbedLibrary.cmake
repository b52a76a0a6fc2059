# Writes OUTPUT: one `{"NAME", R"kiln(TEXT)kiln"},` line per .kiln file in
# LIBRARIES (a ;-list), the table of libraries built into kilnc (`import NAME`).
set(out "// Generated from lib/*.kiln by frontend/EmbedLibrary.cmake; do not edit.\n")
foreach(file ${LIBRARIES})
  get_filename_component(name "${file}" NAME_WE)
  file(READ "${file}" text)
  string(FIND "${text}" ")kiln\"" bad)
  if(NOT bad EQUAL -1)
    message(FATAL_ERROR "${file} contains the delimiter )kiln\"")
  endif()
  string(APPEND out "{\"${name}\", R\"kiln(${text})kiln\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "${out}")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
