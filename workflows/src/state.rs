//! What the steps along the flow (transfer, webhook schedule,
//! retention) read and change of a dissemination's workflow state: they
//! are generic over it, so they need nothing back from the workflow module.

use crate::contract::{DisseminationEvent, DisseminationView};

pub(crate) trait DisseminationState {
    fn view(&self) -> &DisseminationView;
    fn view_mut(&mut self) -> &mut DisseminationView;
    fn events(&self) -> &Vec<DisseminationEvent>;
    fn events_mut(&mut self) -> &mut Vec<DisseminationEvent>;
}
