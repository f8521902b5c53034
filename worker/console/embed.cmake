# embed.cmake - writes one console asset (IN) as a C array called NAME into
# OUT, so that the binary carries its pages and needs nothing beside it at
# run time: cmake -DIN=file -DNAME=ident -DOUT=file.c -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" hex "${hex}")
file(WRITE "${OUT}.tmp"
  "/* generated at build time from ${IN}: edit that file */\n"
  "extern const char ${NAME}[];\n"
  "const char ${NAME}[] = {\n${hex}0x00};\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
