"""AutoencoderTransformer: a dense autoencoder as a drop-in for PCA."""

import numbers

from ._base import BaseAutoencoder
from ._compat import Interval, StrOptions


class AutoencoderTransformer(BaseAutoencoder):
    """Dimensionality reduction with a dense autoencoder trained in PyTorch.

    An encoder of fully connected layers maps each sample to a linear code of
    ``n_components`` values; a mirrored decoder maps the code back. Training
    minimises the reconstruction error, so ``transform`` gives a nonlinear
    analogue of PCA's scores and ``inverse_transform`` of its reconstruction.

    Inputs are centred and divided by one common scale (the root mean feature
    variance) inside the network, so raw data in any units trains well. That
    is a change of units, not a reweighting: with ``loss="mse"`` the model
    minimises the squared reconstruction error in the units of ``X``, exactly
    as PCA does. Put a ``StandardScaler`` in front to weight features equally.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code (the bottleneck). Unlike PCA, None is an error (an
        autoencoder has no "all components"). More components than features
        are allowed on purpose: an overcomplete code, useful with
        ``sparsity`` or ``noise``; it starts as the identity plus zeros.
    hidden_layer_sizes : int or tuple of int, default=(512, 256)
        Widths of the encoder's hidden layers, from the input inwards; the
        decoder mirrors them. ``()`` gives a linear autoencoder (no hidden layer).
    activation : {"relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", \
"selu", "silu"}, default="elu"
        Activation of the hidden layers. ELU generalised better than ReLU on
        MNIST, digits and breast cancer (``benchmarks/bench_defaults.py``).
    output_activation : {"linear", "sigmoid", "tanh", "auto"}, default="auto"
        Activation of the decoder's output. Use ``"sigmoid"`` for data in
        [0, 1] (required with ``loss="bce"``), ``"tanh"`` for data in [-1, 1].
        ``"auto"`` chooses ``"sigmoid"`` when every training value lies in
        [0, 1] and the values span at least half of it (images, proportions),
        else ``"linear"``; continued fits keep the first choice.
    dropout : float, default=0.0
        Dropout probability after each hidden layer, in training only.
    batch_norm : bool, default=False
        Batch-normalise each hidden layer before its activation.
    linear_shortcut : bool, default=True
        Add a linear path beside the encoder's and the decoder's hidden
        layers, initialised to a whitened PCA of the training data while the
        hidden layers' contribution starts at zero: the untrained model is
        PCA, and training adds the nonlinear part. Keeps the model at PCA's
        level on nearly linear data.
    architecture : {"dense", "conv"}, default="dense"
        ``"conv"``: for images flattened to rows of ``X`` (so the estimator
        still fits any Pipeline), stride-2 3x3 convolutions with
        ``conv_channels`` down, the dense ``hidden_layer_sizes`` to the code,
        and transposed convolutions back up, cropped to ``input_shape``
        exactly (odd sizes work).
    input_shape : tuple (channels, height, width), default=None
        Shape of one image, required with ``architecture="conv"``; its
        product must equal the number of features (a ValueError otherwise).
    conv_channels : tuple of int, default=(32, 64)
        Output channels of each convolution; each halves height and width.
    noise : {None, "gaussian", "masking"}, default=None
        Corrupt the encoder's input in training only (a denoising
        autoencoder): Gaussian noise of standard deviation ``noise_level``
        times the data's scale, or a share ``noise_level`` of entries set to
        zero. The loss compares with the clean input; ``transform`` never
        adds noise.
    noise_level : float, default=0.1
        Strength of ``noise``: the standard deviation in units of the data's
        scale, or the share of entries masked (below 1).
    sparsity : float, default=0.0
        Weight of an L1 penalty on the code (mean absolute code value per
        sample, added to the loss): higher values give sparser codes.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss: mean squared error, or binary cross-entropy for
        data in [0, 1] (a ValueError otherwise).
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default="adam"
        Adam and AdamW use PyTorch's fused kernels on CPU and CUDA; SGD uses
        Nesterov momentum 0.9.
    learning_rate : float, default=1e-3
        Step size of the optimiser.
    learning_rate_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` anneals the step size to zero over ``max_epochs`` (per
        ``fit`` call; ``partial_fit`` always uses ``learning_rate``).
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``).
    batch_size : int, default=256
        Samples per optimiser step.
    max_epochs : int, default=100
        Maximum number of passes over the training data per ``fit``. A fit
        that reaches it warns (``ConvergenceWarning``) only when it is far
        from converged: over its last 10 epochs the best monitored loss still
        fell by more than 1% per epoch of all it fell since the first epoch
        (0.5% for a validation loss). Without held-out data the training
        loss keeps falling long after more epochs stop helping new data: at
        the default 100 epochs on digits, wine, breast cancer and iris it
        still fell 0.16-0.73% per epoch while twice the epochs changed the
        held-out error by -15% to +7%; 30-epoch fits of digits fell 1.6-1.8%
        per epoch, and twice the epochs gained 9-16%.
    pretrain : {None, "layerwise"}, default=None
        ``"layerwise"``: before training the whole network, greedily train
        each encoder layer and its mirror in the decoder as a shallow
        autoencoder of the codes of the layers below, from the outside in
        (dense architecture only), in ``fit``; ``partial_fit`` and continued
        training (``warm_start``) never pretrain. With ``linear_shortcut``
        the network still starts as PCA: each nonlinear path keeps its
        pretrained layers but its last layer starts at zero, so part of what
        pretraining learned is discarded (see the README's measurements).
    pretrain_epochs : int, default=10
        Maximum epochs of pretraining per layer pair (before ``max_epochs``
        of training the whole network).
    neighbor_weight : float, default=0.0
        Map mode, for 2-D and 3-D maps that keep neighbourhoods: each fit
        lays out the fuzzy graph of the ``n_neighbors`` nearest neighbours
        of the training rows as UMAP does (``embedding_``, which
        ``fit_transform`` returns), and trains the network to reproduce that
        map too, with this weight on each code's mean squared distance to
        its place in it. 1 keeps the reconstruction at the plain model's
        level; larger values bring the encoder's codes of new rows closer to
        the map at some cost in reconstruction. 0 trains exactly as without
        it. The graph is built by each ``fit`` (and each ``partial_fit``, from
        the rows it is given) with scikit-learn's ``NearestNeighbors``
        (``pynndescent`` above 50,000 rows when installed); data must fit in
        memory.
    n_neighbors : int, default=15
        Neighbours per row in the graph (larger: more global structure).
    min_dist : float, default=0.1
        How tightly neighbours may pack in the code space (UMAP's min_dist),
        in [0, 1]: UMAP's kernel is fitted for a spread of 1, and needs
        ``min_dist <= spread``.
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the data, stop when its loss has
        not improved for ``n_iter_no_change`` epochs, and restore the weights
        of the best epoch. Without it, training stops when the training loss
        stops improving. ``"auto"`` holds out data when ``fit`` gets at least
        5,000 rows (smaller data loses too much to a validation split), and
        never in ``partial_fit`` or with ``neighbor_weight > 0`` (its sampled
        validation loss stops training too early).
    validation_fraction : float, default=0.1
        Share of the training data held out with ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement that end training.
    tol : float, default=1e-4
        Relative improvement of the loss that counts as one: an epoch improves
        when its loss is below ``best * (1 - tol)``.
    device : str, default="auto"
        ``"auto"`` (CUDA if available, else Apple MPS, else CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"mps"``. A device that is not available
        is a ValueError, never a silent fallback.
    precision : {"float32", "tf32", "bf16"}, default="float32"
        Arithmetic of training: ``"bf16"`` autocasts to bfloat16; ``"tf32"``
        lets CUDA matmuls use TensorFloat-32 (no effect on other devices).
        ``transform`` computes in the precision of its input (float32, or
        a float64 copy of the network for float64 input).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling, the validation split and
        any noise, through private generators (global seeds are untouched).
        An int gives bit-identical results on CPU.
    verbose : int, default=0
        When > 0, report each epoch: a tqdm progress bar (epoch, loss,
        validation loss, time left) on a terminal or in a notebook when tqdm
        is installed, else one printed line per epoch (loss, validation
        loss, seconds).
    warm_start : bool, default=False
        Continue training the fitted network (and optimiser) on ``fit``
        instead of starting anew.

    Attributes
    ----------
    encoder_ : torch.nn.Module
        Maps a float32 tensor of samples (in the units of ``X``) to codes.
    decoder_ : torch.nn.Module
        Maps codes to reconstructions in the units of ``X``.
    device_ : torch.device
        Where the network lives (CPU after unpickling).
    loss_curve_ : list of float
        Training loss per epoch: the MSE in the units of ``X`` for
        ``loss="mse"``, the mean binary cross-entropy for ``"bce"``.
    validation_loss_curve_ : list of float or None
        Validation loss per epoch with ``early_stopping``, else None.
    best_loss_ : float
        Lowest monitored loss of the last ``fit`` (validation loss with
        ``early_stopping``, else training loss).
    pretrain_loss_curves_ : list of list of float or None
        With ``pretrain="layerwise"``, the loss per pretraining epoch of each
        layer pair, outermost first: mean squared error in the network's
        internal units (the data divided by its common scale, for the
        outermost pair). None without pretraining.
    n_iter_ : int
        Number of epochs run in total (pretraining epochs not included).
    embedding_ : ndarray of shape (n_samples, n_components) or None
        With ``neighbor_weight > 0``: the map of the last fitting call's rows
        (UMAP's layout of their neighbour graph, in the units of the codes,
        float32), which ``fit_transform`` returns; None otherwise, or when
        ``early_stopping`` held rows out.
    streamed_ : bool
        Whether the last fitting call streamed its data block by block from
        where it lies (data beyond the memory budget, ``skae.set_config``)
        rather than training from memory.
    stream_block_rows_ : int or None
        Rows per block of that streamed call; None when it trained from memory.
    n_components_ : int
        Size of the code (``n_components``), as PCA's.
    n_samples_seen_ : int
        Rows passed to the fitting calls since the network was built
        (``partial_fit`` and warm-started fits add to it), as IncrementalPCA's.
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of those rows (float64), as PCA's.
    noise_variance_ : float
        Mean squared reconstruction error per feature on the last fitting
        call's training rows (at most 2,048, evenly spaced), in the units of
        ``X`` squared (PCA's is the variance its components leave out, per
        feature).
    reconstruction_r2_ : float
        Share of those rows' variance the reconstruction explains:
        ``1 - noise_variance_ / mean feature variance``, what
        ``PCA.explained_variance_ratio_.sum()`` is for PCA.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Feature names, when ``X`` has string column names.

    See Also
    --------
    VAETransformer : A variational autoencoder with the same interface.
    sklearn.decomposition.PCA : The linear method this generalises.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=2, max_epochs=5, random_state=0)
    >>> ae.fit_transform(X).shape
    (1797, 2)
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        "loss": [StrOptions({"mse", "bce"})],
        "sparsity": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(512, 256),
        activation="elu",
        output_activation="auto",
        dropout=0.0,
        batch_norm=False,
        linear_shortcut=True,
        architecture="dense",
        input_shape=None,
        conv_channels=(32, 64),
        noise=None,
        noise_level=0.1,
        sparsity=0.0,
        loss="mse",
        optimizer="adam",
        learning_rate=1e-3,
        learning_rate_schedule="constant",
        weight_decay=0.0,
        batch_size=256,
        max_epochs=100,
        pretrain=None,
        pretrain_epochs=10,
        neighbor_weight=0.0,
        n_neighbors=15,
        min_dist=0.1,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        precision="float32",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.linear_shortcut = linear_shortcut
        self.architecture = architecture
        self.input_shape = input_shape
        self.conv_channels = conv_channels
        self.noise = noise
        self.noise_level = noise_level
        self.sparsity = sparsity
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.neighbor_weight = neighbor_weight
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
