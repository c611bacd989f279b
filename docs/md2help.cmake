# Turns one Markdown man page source into a C header holding its text for --help, so that the man
# page and --help cannot drift: cmake -DMD=... -DOUT=... -DNAME=... -DLOWDOWN=... -P md2help.cmake
file(READ "${MD}" text)
# Drop the metadata block (title:, section: ...) that only the man page uses.
string(REGEX REPLACE "^([a-z]+:[^\n]*\n)+\n" "" body "${text}")
get_filename_component(outdir "${OUT}" DIRECTORY)
file(WRITE "${outdir}/${NAME}.body.md" "${body}")
# Underscores inside words are literal (CKA_ID, C_Login, not_before), not emphasis; quotes stay
# ASCII so that examples can be copied; 80 columns whether or not a terminal is attached.
execute_process(COMMAND "${LOWDOWN}" -Tterm --term-no-ansi --term-columns=80 --term-width=80
                        --parse-no-intraemph --out-no-smarty "${outdir}/${NAME}.body.md"
                OUTPUT_VARIABLE rendered RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "lowdown failed on ${MD}")
endif()
# lowdown's terminal output marks a code block's lines with "| " and a definition's first line
# with ": " (both at the indentation of a section's blocks, six columns); a --help text shows the
# code as it is written and the definition indented under its term. A subsection's "## " becomes
# an indentation of two, as man(7) indents .SS. Trailing blanks go too.
string(REGEX REPLACE "\n      [|] " "\n      " rendered "${rendered}")
string(REGEX REPLACE "\n      [|]\n" "\n\n" rendered "${rendered}")
string(REGEX REPLACE "\n      : " "\n        " rendered "${rendered}")
string(REGEX REPLACE "\n##+ " "\n  " rendered "${rendered}")
string(REGEX REPLACE " +\n" "\n" rendered "${rendered}")
string(REPLACE "\\" "\\\\" rendered "${rendered}")
string(REPLACE "\"" "\\\"" rendered "${rendered}")
string(REPLACE "\n" "\\n\"\n    \"" rendered "${rendered}")
file(WRITE "${OUT}.tmp" "/* Generated from ${MD}; edit that file instead. */\nstatic const char help_${NAME}[] =\n    \"${rendered}\";\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
