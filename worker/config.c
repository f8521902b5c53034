/* config.c - placeholder until the configuration table lands */
