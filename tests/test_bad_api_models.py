"""Bad input to the task models' Python API: one clear line naming the argument."""
import numpy as np
import pytest

import rnnkit
from rnnkit import Vocab
from rnnkit.data.text import CharVocab
from rnnkit.models.tagger import tag_vocab


@pytest.fixture(scope="module")
def s2s():
    return rnnkit.Seq2Seq(Vocab("abcdef"), Vocab("xyz"), embed_size=4, hidden_size=4, seed=0)


@pytest.fixture(scope="module")
def tagger():
    return rnnkit.Tagger(Vocab(["the", "cat", "sat"]), tag_vocab([["D", "N", "V"]]), char_vocab=Vocab("thecasat"),
                         embed_size=4, char_embed_size=4, char_hidden_size=4, hidden_size=4, seed=0)


@pytest.fixture(scope="module")
def lm_vocab():
    text = "hello world, this is a tiny bit of text. " * 20
    v = CharVocab.from_text(text)
    return rnnkit.CharLM(len(v), embed_size=8, hidden_size=8, num_layers=1, seed=0), v


# -- Seq2Seq ---------------------------------------------------------------------------------------

def test_seq2seq_predict_refuses_a_bare_str(s2s):
    with pytest.raises(TypeError, match=r"texts: expected a list of texts, got a str; wrap one text as \['abc'\]"):
        s2s.predict("abc")
    assert len(s2s.predict(["abc"])) == 1


@pytest.mark.parametrize("sources, got", [("abc", "a str"), (["a", "b"], "a list of str")])
def test_seq2seq_translate_refuses_one_source(s2s, sources, got):
    with pytest.raises(TypeError, match=f"sources: expected a list of sources .*, got {got}; wrap one source"):
        s2s.translate(sources)


@pytest.mark.parametrize("kw, msg", [
    (dict(batch_size=0), "batch_size: expected an integer >= 1, got 0"),
    (dict(beam=0), "beam: expected an integer >= 1, got 0"),
    (dict(beam=2.5), "beam: expected an integer >= 1, got 2.5"),
])
def test_seq2seq_translate_arguments(s2s, kw, msg):
    with pytest.raises((TypeError, ValueError), match=msg):
        s2s.translate([["a", "b"]], **kw)


def test_seq2seq_beam_search_and_greedy_arguments(s2s):
    with pytest.raises(ValueError, match=r"src_ids: expected token ids of shape \(L,\), got shape \(\)"):
        s2s.beam_search("abc")
    with pytest.raises(ValueError, match="src_ids: expected at least one token"):
        s2s.beam_search([])
    with pytest.raises(ValueError, match="max_len: expected an integer >= 1, got 0"):
        s2s.beam_search([4, 5], max_len=0)
    with pytest.raises(ValueError, match=r"beam: expected an integer >= 1, got 0"):
        s2s.beam_search([4, 5], beam=0)
    with pytest.raises(ValueError, match=r"src: expected token ids of shape \(L, N\), got shape \(2,\); one source"):
        s2s.greedy(np.array([4, 5]), [2])
    with pytest.raises(ValueError, match="max_len: expected an integer >= 1, got 0"):
        s2s.greedy(np.array([[4], [5]]), [2], max_len=0)
    ids, _, _ = s2s.greedy(np.array([[4], [5]]), [2], max_len=3)
    assert ids.shape[0] == 1


@pytest.mark.parametrize("kw, match", [(dict(teacher_forcing="1"), "teacher_forcing: expected a probability"),
                                       (dict(teacher_forcing=float("nan")), "teacher_forcing: expected a probability"),
                                       (dict(max_len=0), "max_len: expected an integer >= 1")])
def test_seq2seq_constructor_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        rnnkit.Seq2Seq(Vocab("ab"), Vocab("x"), embed_size=4, hidden_size=4, **kw)


# -- Tagger ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sentences, got, wrap", [
    ("the cat sat", "a str", r"\[\['the', 'cat', 'sat'\]\]"),
    (["the", "cat"], "a list of str", r"\[\['the', 'cat'\]\]"),
])
def test_tagger_predict_refuses_one_sentence(tagger, sentences, got, wrap):
    with pytest.raises(TypeError, match=f"sentences: expected a list of sentences \\(lists of words\\), got {got}; "
                                        f"wrap one sentence as {wrap}"):
        tagger.predict(sentences)
    assert len(tagger.predict([["the", "cat"]])[0]) == 2


def test_tagger_predict_batch_size(tagger):
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1, got 0"):
        tagger.predict([["the"]], batch_size=0)


# -- CharLM --------------------------------------------------------------------------------------------

def test_charlm_forward_checks_its_ids(lm_vocab):
    lm, v = lm_vocab
    with pytest.raises(ValueError, match=r"CharLM input: expected token ids of shape \(L, N\), got shape \(5,\); "
                                         r"one sequence is ids\[:, None\]"):
        lm(v.encode("hello"))
    with pytest.raises(ValueError, match=r"CharLM input: .*got shape \(2, 3, 4\)"):
        lm(np.zeros((2, 3, 4), np.int64))
    with pytest.raises(TypeError, match="CharLM input: expected integer token ids, got dtype float64"):
        lm(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"CharLM input: expected ids in \[0, 20\), got min 0, max 99"):
        lm(np.array([[0, 99]]))
    logits, _ = lm(v.encode("hello")[:, None])
    lm.clear_cache()
    assert logits.shape == (5, 1, len(v))


def test_charlm_vocab_size(lm_vocab):
    _, v = lm_vocab
    with pytest.raises(TypeError, match=r"vocab_size: expected an integer >= 1 \(len\(vocab\)\), got CharVocab"):
        rnnkit.CharLM(v, embed_size=4, hidden_size=4)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"vocab_size: expected an integer >= 1 .*, got {bad}"):
            rnnkit.CharLM(bad, embed_size=4, hidden_size=4)


@pytest.mark.parametrize("kw, match", [
    (dict(top_k=2.5), "top_k: expected an integer >= 0, got 2.5"),
    (dict(temperature=float("nan")), "temperature: expected a finite number >= 0, got nan"),
    (dict(temperature=-1.0), "temperature: expected a finite number >= 0, got -1.0"),
    (dict(length=0), "length: expected an integer >= 1, got 0"),
    (dict(length="5"), "length: expected an integer >= 1, got '5'"),
    (dict(prime=5), "prime: expected a str, got int"),
])
def test_charlm_sample_arguments(lm_vocab, kw, match):
    lm, v = lm_vocab
    with pytest.raises((TypeError, ValueError), match=match):
        lm.sample(v, **kw)


def test_charlm_sample_vocab(lm_vocab):
    lm, v = lm_vocab
    with pytest.raises(TypeError, match="vocab: expected a vocabulary .*, got str"):
        lm.sample("abc")
    with pytest.raises(ValueError, match=r"vocab: expected 20 symbols \(the model's vocab_size\), got 3"):
        lm.sample(CharVocab.from_text("ab"))
    assert len(lm.sample(v, length=5, rng=0)) == 5


# -- SequenceClassifier -----------------------------------------------------------------------------------

def test_classifier_predict_sequences_shapes():
    clf = rnnkit.SequenceClassifier(3, 8, 2, seed=0)
    with pytest.raises(ValueError, match=r"predict_sequences: xs\[0\]: expected shape \(L, 3\), got \(5,\)"):
        clf.predict_sequences([np.zeros(5, np.float32)])
    with pytest.raises(ValueError, match=r"xs\[1\]: expected 3 features per step, got shape \(5, 4\)"):
        clf.predict_sequences([np.zeros((2, 3), np.float32), np.zeros((5, 4), np.float32)])
    with pytest.raises(ValueError, match="xs: expected at least one sequence"):
        clf.predict_sequences([])
    with pytest.raises(ValueError, match=r"probabilities: xs\[0\]: expected at least one step"):
        clf.probabilities([np.zeros((0, 3))])
    assert len(clf.predict_sequences([np.zeros((5, 3), np.float32)])) == 1


@pytest.mark.parametrize("n", [1, 0])
def test_classifier_needs_two_classes(n):
    with pytest.raises(ValueError, match=f"n_classes: expected an integer >= 2, got {n}"):
        rnnkit.SequenceClassifier(3, 8, n)


# -- Forecaster -------------------------------------------------------------------------------------------

def test_forecaster_fit_scaler_checks_the_series():
    f = rnnkit.Forecaster(window=4, hidden_size=4)
    with pytest.raises(ValueError, match="train: expected finite values, got nan at row 20"):
        f.fit_scaler(np.r_[np.arange(20.), np.nan])
    with pytest.raises(ValueError, match=r"train: expected a 1-D series, got shape \(5, 2\)"):
        f.fit_scaler(np.zeros((5, 2)))
    assert f.scaler is None


def test_forecaster_predict_origins_and_horizon():
    f = rnnkit.Forecaster(window=4, hidden_size=4, seed=0).fit_scaler(np.arange(30.))
    s = np.arange(30.)
    with pytest.raises(ValueError, match=r"origins: expected <= len\(series\) - 1 = 29, got 40 \(valid: \[3, 29\]\)"):
        f.predict(s, [40])
    with pytest.raises(ValueError, match=r"origins: expected >= window - 1 = 3, got 2 \(valid: \[3, 29\]\)"):
        f.predict(s, [2])
    with pytest.raises(ValueError, match="origins: expected a non-empty"):
        f.predict(s, [])
    with pytest.raises(TypeError, match="origins: expected integer indices, got dtype float64"):
        f.predict(s, [5.0])
    for h in (-1, 0):
        with pytest.raises(ValueError, match=f"horizon: expected an integer >= 1, got {h}"):
            f.predict(s, [10], horizon=h)
    assert f.predict(s, [3, 29], horizon=2).shape == (2, 2)


def test_stream_batches_name_what_arrived():
    from rnnkit.data.text import StreamBatches

    ids = np.arange(100) % 7
    with pytest.raises(TypeError, match=r"StreamBatches ids: expected a 1-D array of integer token ids .*got shape \(2, 50\)"):
        StreamBatches(ids.reshape(2, 50), 2, 8)
    with pytest.raises(TypeError, match="got list"):
        StreamBatches(list(ids), 2, 8)
    with pytest.raises(TypeError, match="dtype float64"):
        StreamBatches(ids.astype(float), 2, 8)
    with pytest.raises((TypeError, ValueError), match="batch_size: expected an integer >= 1"):
        StreamBatches(ids, "4", 8)
    assert len(StreamBatches(ids.astype(np.uint16), 2, 8)) == 7            # any integer dtype, memory maps too


def test_window_batches_name_the_shapes():
    from rnnkit.data.timeseries import WindowBatches

    with pytest.raises(ValueError, match=r"expected x \(window, N, features\) and y \(N, k\) with the same N, got "
                                         r"shapes \(4, 10, 1\) and \(7, 1\)"):
        WindowBatches(np.zeros((4, 10, 1)), np.zeros((7, 1)))
    with pytest.raises(ValueError, match=r"got shapes \(10,\) and \(10,\)"):
        WindowBatches(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1, got 0"):
        WindowBatches(np.zeros((4, 10, 1)), np.zeros((10, 1)), batch_size=0)


def test_from_torch_names_a_state_dict_and_bfloat16():
    torch = pytest.importorskip("torch")
    from rnnkit.interop import from_torch

    with pytest.raises(TypeError, match=r"from_torch: expected a torch.nn module, got OrderedDict \(a state dict\?"):
        from_torch(torch.nn.LSTM(4, 8).state_dict())
    with pytest.raises(TypeError, match=r"expected float32 or float64 weights, got torch.bfloat16; call module.float"):
        from_torch(torch.nn.LSTM(4, 8).to(torch.bfloat16))


def test_nan_regression_targets_are_named_as_targets():
    m = rnnkit.SequenceModel(3, 4, 1, "regression")
    with pytest.raises(ValueError, match=r"mse target \(the regression targets\): expected finite values, got 2 NaN"):
        m.train_step((np.zeros((5, 2, 3), np.float32), np.full((2, 1), np.nan, np.float32), None))


def test_sample_warns_of_prime_characters_the_model_never_saw():
    from rnnkit.data.text import CharVocab

    v = CharVocab.from_text("hello world")
    lm = rnnkit.CharLM(len(v), embed_size=4, hidden_size=4, seed=0)
    with pytest.warns(UserWarning, match=r"prime: characters the model never saw \('QZ'\)"):
        lm.sample(v, length=3, prime="hello QZ", rng=0)


def test_a_batch_missing_a_part_is_named():
    clf = rnnkit.SequenceClassifier(3, 8, 2)
    with pytest.raises(TypeError, match=r"SequenceClassifier: expected a batch \(x, y, lengths\), got 2 items"):
        clf.train_step((np.zeros((5, 2, 3), np.float32), np.zeros(2, int)))
    with pytest.raises(TypeError, match=r"expected a batch \(x, y, lengths\), got ndarray"):
        clf.train_step(np.zeros((5, 2, 3), np.float32))
