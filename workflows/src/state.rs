//! What the steps along the flow (transfer, webhook schedule,
//! retention) read and change of a dissemination's workflow state: they
//! are generic over it, so they need nothing back from the workflow module.

use crate::contract::{DisseminationEvent, DisseminationView, TapeReady};

pub(crate) trait DisseminationState {
    fn view(&self) -> &DisseminationView;
    fn view_mut(&mut self) -> &mut DisseminationView;
    fn events(&self) -> &Vec<DisseminationEvent>;
    fn events_mut(&mut self) -> &mut Vec<DisseminationEvent>;
    /// Its batch's word that its tape files are settled (flow 11 on).
    fn tape_ready(&self) -> Option<&TapeReady>;
}
