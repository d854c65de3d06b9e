import torch

from speechbrain_xfer.brains.run_record import RunRecord
from speechbrain_xfer.checkpoints import AtomicCheckpointer


def test_a_resume_restores_the_history_and_random_states_and_later_recoveries_change_nothing(tmp_path):
    record = RunRecord()
    record.start()
    record.add(10, 0.5)
    saver = AtomicCheckpointer(tmp_path, {"run_record": record})
    saver.save_checkpoint()
    drawn = torch.rand(3)  # what the run draws after the save

    resumed = RunRecord()
    AtomicCheckpointer(tmp_path, {"run_record": resumed}).recover_if_possible()
    assert resumed.valid_history == [(10, 0.5)] and resumed.previous_train_time >= 0.0
    assert torch.equal(torch.rand(3), drawn)  # the random states came back with the record
    resumed.start()
    resumed.add(20, 0.6)
    AtomicCheckpointer(tmp_path, {"run_record": resumed}).recover_if_possible()  # evaluate's reload of the best
    assert resumed.valid_history == [(10, 0.5), (20, 0.6)]


def test_a_checkpoint_saved_without_a_record_still_loads(tmp_path):
    model = torch.nn.Linear(2, 1)
    AtomicCheckpointer(tmp_path, {"model": model}).save_checkpoint()
    record = RunRecord()
    checkpointer = AtomicCheckpointer(tmp_path, {"model": torch.nn.Linear(2, 1)})
    checkpointer.add_recoverable("run_record", record, optional_load=True)  # as TransferBrain registers it
    assert checkpointer.recover_if_possible() is not None
    assert record.valid_history == []


def test_an_intra_epoch_resume_restores_the_random_states_at_the_first_batch_or_at_the_next_stage(tmp_path):
    record = RunRecord()
    record.save(tmp_path / "run_record.ckpt")
    expected = torch.rand(3)
    for next_event in ("a batch or any other stage", "another training stage"):
        resumed = RunRecord()
        resumed.load(tmp_path / "run_record.ckpt", end_of_epoch=False)
        resumed.train_stage_started()  # the resumed epoch: its data loader draws now, the states wait
        torch.rand(5)
        if next_event == "a batch or any other stage":
            resumed.restore_pending_rng()  # what TransferBrain calls at each batch and at other stages' start
        else:
            (tmp_path / "run_record.ckpt.rng.pt").rename(tmp_path / "gone")  # kept in memory: the file may go
            resumed.train_stage_started()
            (tmp_path / "gone").rename(tmp_path / "run_record.ckpt.rng.pt")
        assert torch.equal(torch.rand(3), expected), next_event
        resumed.restore_pending_rng()  # once only
        assert not torch.equal(torch.rand(3), expected)
