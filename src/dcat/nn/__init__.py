"""Neural-network pieces, torch only: the D-CAT loss and the peers' losses, attention, the
modality network and the encoder registry. Nothing here imports a training framework."""
