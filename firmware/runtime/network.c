/* pz_infer: walk the generated layer table (model.c) from pz_input to pz_output. Emulator entry point.
 * Without a planned io table (MLPs) the layers ping-pong between two buffers; with one (conv nets,
 * firmware/planner.py) each layer reads and writes the arena places the build planned for it. */
#include <stddef.h>

#include "model.h"

int pz_infer(void) {
    const pz_network *net = &pz_network_model;
    const void *x = pz_input;
    for (uint16_t i = 0; i < net->n_layers; i++) {
        const pz_layer *layer = &net->layers[i];
        void *y;
        if (net->io != NULL) {
            x = net->io[i];
            y = net->io[i + 1u];
        } else {
            y = (i + 1u == net->n_layers) ? net->output : net->buf[i % 2u];
        }
        layer->run(layer, x, y);
        x = y;
    }
    return net->predict(net->output, net->output_count);
}
