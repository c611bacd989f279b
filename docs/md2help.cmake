# Turns one Markdown man page source into a C header holding its text for --help, so that the man
# page and --help cannot drift: cmake -DMD=... -DOUT=... -DNAME=... -DLOWDOWN=... -P md2help.cmake
file(READ "${MD}" text)
# Drop the metadata block (title:, section: ...) that only the man page uses.
string(REGEX REPLACE "^([a-z]+:[^\n]*\n)+\n" "" body "${text}")
get_filename_component(outdir "${OUT}" DIRECTORY)
file(WRITE "${outdir}/${NAME}.body.md" "${body}")
execute_process(COMMAND "${LOWDOWN}" -Tterm --term-no-ansi --term-width=100 "${outdir}/${NAME}.body.md"
                OUTPUT_VARIABLE rendered RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "lowdown failed on ${MD}")
endif()
string(REPLACE "\\" "\\\\" rendered "${rendered}")
string(REPLACE "\"" "\\\"" rendered "${rendered}")
string(REPLACE "\n" "\\n\"\n    \"" rendered "${rendered}")
file(WRITE "${OUT}.tmp" "/* Generated from ${MD}; edit that file instead. */\nstatic const char help_${NAME}[] =\n    \"${rendered}\";\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
