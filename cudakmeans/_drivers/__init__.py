"""Drivers: the algorithms, written once for every backend.

Each module reads like the algorithm it runs and talks to a backend only through a
*workspace* (or, for the silhouette, a backend module) that the public layer chose with
:func:`cudakmeans._device.get_backend` and handed down; what a backend provides is declared
in :mod:`cudakmeans._backend`, and ``tests/test_backend.py`` checks that drivers use
nothing else. Drivers never import a backend, never validate user input (the public layer
has done that) and keep only a few scalars per step on the host.

* :mod:`.lloyd`: one greedy k-means++ seeding, one run of Lloyd, several runs in lockstep;
  the random draws, in scikit-learn's order;
* :mod:`.runs`: a k-means fit: the ``n_init`` runs, how they are scheduled (batched into
  the same launches, on threads, or one after another) and which one is kept;
* :mod:`.minibatch`: one mini-batch step, the batches of a fit drawn ahead, early stopping,
  the steps of a fit;
* :mod:`.silhouette`: one silhouette pass, the rows sorted by cluster into segments.
"""
