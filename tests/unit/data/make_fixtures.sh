#!/bin/sh
# Rebuild the map-file and ELF fixtures used by tests/unit/test_boards.py (gcc 12 / GNU ld, x86_64 host;
# the harness only reads symbols, so the target architecture does not matter).
set -e
cd "$(dirname "$0")"
gcc -c -O0 -fno-asynchronous-unwind-tables -o /tmp/factory_data_fixture.o factory_data_fixture.c
ld -static -nostdlib -T factory_data_fixture.ld -Map=factory_data_fixture.map -o factory_data_fixture.elf \
   /tmp/factory_data_fixture.o
rm -f /tmp/factory_data_fixture.o
sed -i "s#/tmp/factory_data_fixture.o#factory_data_fixture.o#g" factory_data_fixture.map
