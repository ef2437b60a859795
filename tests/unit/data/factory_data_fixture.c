/* Smallest program for the map/ELF fixtures: one function, one data word. */
int factory_data_marker = 0x1234;
int main(void) { return factory_data_marker; }
